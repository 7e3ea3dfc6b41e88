"""Empty message files made ahead of time, off the path of a delivery.

Creating a file is the dearest step of storing a message on some file systems: ext4
without a journal, for one, walks every inode freed in the last minute on each
creation (0.3-0.7 ms per file after a few thousand deletions, in `perf`), and a server
that answers "250" only once the message is visible waits for it. A serving process
therefore keeps a few empty files ready in a directory of its own under the mail root,
and a helper process (`/bin/sh`, about 2 MiB) makes a new one each time one is taken,
on another core while the next message comes in — as Postfix's `virtual` makes its
Maildir files in a process of their own. A delivery writes the message into a ready
file and renames it into the Maildir's `new/` (or `cur/`), just as it would from
`tmp/`: the rename is what makes it visible, whole.

Nothing depends on the helper: with no ready file there (helper behind, stopped, or
unable to create files), a delivery makes its own file in `tmp/` as before, and a
Maildir on another file system than the mail root never uses the ready files. The
helper is told of each file taken only after the delivery's renames, so that its
next creation (which locks the directory it creates in) does not hold them up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

# Files kept ready per process: a burst of this many messages finds them all made.
READY = 32
# Under the mail root: a directory of the mail root named "tmp" is never backed up
# (`courriel.backup.snapshot`), and one starting with "." is no domain's.
POOL = ".courriel/tmp"

# Made in order, named 0, 1, 2...; one more per line read; stops at end of input
# (the serving process closed the pipe, or died).
_HELPER = """\
umask 077
cd "$1" || exit 1
made=0
while [ "$made" -lt "$2" ]; do : > "$made" || exit 1; made=$((made + 1)); done
while read -r used; do : > "$made" || exit 1; made=$((made + 1)); done
"""


class Spares:
    """The ready files of this process: `take` one for a folder, `used` once the
    delivery is done with it."""

    def __init__(self, directory: Path, ready: int = READY) -> None:
        for level in reversed([directory, *directory.parents]):
            if not level.exists():  # the mail root too, if missing: nobody else's (0700)
                level.mkdir(mode=0o700, exist_ok=True)
        self.directory = str(directory)
        self.device = os.stat(directory).st_dev
        self._next = 0
        self._lock = threading.Lock()
        self._same_device: dict[str, bool] = {}
        self._helper = subprocess.Popen(
            ["/bin/sh", "-c", _HELPER, "courriel-spares", self.directory, str(ready)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        assert self._helper.stdin is not None
        self._pipe = self._helper.stdin.fileno()
        os.set_blocking(self._pipe, False)

    def take(self, folder: str) -> tuple[int, str] | None:
        """A ready file, open for writing, and its path; None when there is none or
        the folder is on another file system (a rename could not move it there)."""
        if not self._on_this_device(folder):
            return None
        with self._lock:
            path = f"{self.directory}/{self._next}"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:  # not made yet, or the helper stopped
                return None
            self._next += 1
        return fd, path

    def used(self, count: int) -> None:
        """`count` ready files were taken (moved into Maildirs, or removed after a
        failed write): the helper makes as many again."""
        if count and self._pipe >= 0:
            try:
                os.write(self._pipe, b"\n" * count)
            except OSError:  # the helper ended (the disk full?): deliveries make their own
                self._pipe = -1

    def owns(self, path: str) -> bool:
        return path.startswith(self.directory + "/")

    def not_for(self, folder: str) -> None:
        """A rename from the pool into `folder` failed (another mount of the same file
        system): its deliveries make their own files."""
        self._same_device[folder] = False

    def _on_this_device(self, folder: str) -> bool:
        known = self._same_device.get(folder)
        if known is None:
            try:
                known = os.stat(folder).st_dev == self.device
            except OSError:  # a folder not made yet: the usual way makes it
                return False
            if len(self._same_device) >= 4096:
                self._same_device.clear()
            self._same_device[folder] = known
        return known

    def close(self) -> None:
        """Stop the helper and remove what it left."""
        with contextlib.suppress(OSError):
            self._helper.stdin.close()  # type: ignore[union-attr]
        self._pipe = -1
        try:
            self._helper.wait(10)
        except subprocess.TimeoutExpired:
            self._helper.kill()
            self._helper.wait()
        _remove(self.directory)


_spares: Spares | None = None


def start(mail_root: Path) -> None:
    """Keep files ready for this process's deliveries into Maildirs under `mail_root`;
    pools left by processes that are gone are removed first."""
    global _spares
    if _spares is not None:
        return
    pools = mail_root / POOL
    _remove_stale(pools)
    try:
        _spares = Spares(pools / str(os.getpid()))
    except OSError as error:  # no /bin/sh, a read-only mail root: deliveries make their own
        import logging

        logging.getLogger(__name__).warning("no files made ahead for deliveries: %s", error)


def _forget_in_child() -> None:
    """A process forked from a serving one must not take the same ready files."""
    global _spares
    _spares = None


os.register_at_fork(after_in_child=_forget_in_child)


def stop() -> None:
    global _spares
    if _spares is not None:
        _spares.close()
        _spares = None


def take(folder: str) -> tuple[int, str] | None:
    spares = _spares
    return spares.take(folder) if spares is not None else None


def used(count: int) -> None:
    spares = _spares
    if spares is not None:
        spares.used(count)


def owns(path: str) -> bool:
    """Whether `path` is a ready file of this process."""
    spares = _spares
    return spares is not None and spares.owns(path)


def not_for(folder: str) -> None:
    spares = _spares
    if spares is not None:
        spares.not_for(folder)


def _remove_stale(pools: Path) -> None:
    with contextlib.suppress(OSError), os.scandir(pools) as entries:
        for entry in entries:
            if entry.name.isdigit() and not _alive(int(entry.name)):
                _remove(entry.path)


def _remove(directory: str) -> None:
    """Remove a pool; the helper of a process killed a moment ago may still be making
    its first files there (it ends at its next read of the closed pipe)."""
    for _ in range(100):
        shutil.rmtree(directory, ignore_errors=True)
        if not os.path.lexists(directory):
            return
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
