"""Empty message files made ahead of time, off the path of a delivery.

Creating a file is the dearest step of storing a message on some file systems: ext4
without a journal, for one, walks every inode freed in the last minute on each
creation (0.3-0.7 ms per file after a few thousand deletions, in `perf`), and a server
that answers "250" only once the message is visible waits for it. A serving process
therefore keeps a few empty files ready in a directory of its own under the mail root,
and a helper process (`/bin/sh`, about 2 MiB) makes a new one each time one is taken,
on another core while the next message comes in — as Postfix's `virtual` makes its
Maildir files in a process of their own. A delivery writes the message into a ready
file and links it into the Maildir's `new/` (or `cur/`) under its final name, as it
would rename it from `tmp/`: the link is what makes it visible, whole. (A link, not a
rename: a rename would also lock this directory, where the helper may be making the
next file at that moment; the names left here are removed a batch at a time.)

Each pool is its process's alone, whatever the process ids: it is locked (`flock`)
for as long as its process lives, so a pool left by a process that died is known by
the lock anyone can then take, even after a restart with the same pid (a container's
first process) or with a second server of the same pid in another container sharing
the mail root; and the helper never writes over a file already there.

Nothing depends on the helper: with no ready file there (helper behind, stopped, or
unable to create files), a delivery makes its own file in `tmp/` as before, and a
Maildir on another file system than the mail root never uses the ready files. The
helper is told of each file taken once the delivery is in place; one that ended (a
full disk, killed) is started again when a delivery next finds no ready file, at most
every RESTART_EVERY seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

# Files kept ready per process: a burst of this many messages finds them all made.
READY = 32
# Names of ready files already linked into Maildirs, removed this many at a time, or
# this many seconds after the first of them (a message deleted soon after it came in
# must not keep its data on disk under its pool name while the server is idle).
UNLINK_BATCH = 16
UNLINK_AFTER = 2.0
# Under the mail root: a directory of the mail root named "tmp" is never backed up
# (`courriel.backup.snapshot`), and one starting with "." is no domain's.
POOL = ".courriel/tmp"

# A helper that ended (a full disk, killed) is started again when a delivery finds no
# ready file, at most this often (seconds).
RESTART_EVERY = 10.0

# Made in order, named from $3 on ($3 the next one the process will take: names an
# earlier helper made ahead are skipped) until $2 are ready; then one more per line
# read; stops at end of input (the serving process closed the pipe, or died).
# `set -C`: a file is only ever created (O_EXCL), never truncated.
_HELPER = """\
set -C
umask 077
cd "$1" || exit 1
made=$3
while [ -e "$made" ]; do made=$((made + 1)); done
while [ "$made" -lt $(($3 + $2)) ]; do : > "$made" || exit 1; made=$((made + 1)); done
while read -r used; do : > "$made" || exit 1; made=$((made + 1)); done
"""


class Spares:
    """The ready files of this process: `take` one for a folder, `used` once the
    delivery is done with it."""

    def __init__(self, pools: Path, ready: int = READY) -> None:
        for level in reversed([pools, *pools.parents]):
            if not level.exists():  # the mail root too, if missing: nobody else's (0700)
                level.mkdir(mode=0o700, exist_ok=True)
        directory, self._lock_fd = _claim(pools)
        self.directory = str(directory)
        self._next = 0
        self._in_use = 0  # taken, not yet in a Maildir nor removed
        self._closing = False
        self._linked: list[str] = []
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._same_device: dict[str, bool] = {}
        self._ready = ready
        self._restarting = False  # the helper ended and is being started again
        try:
            self.device = os.stat(directory).st_dev
            self._start_helper()
        except OSError:
            self._release()
            raise

    def _start_helper(self) -> None:
        """(Under `_lock`, or before another thread knows of this pool.) A helper
        making files from the next name to be taken on."""
        self._started = time.monotonic()
        arguments = [self.directory, str(self._ready), str(self._next)]
        self._helper = subprocess.Popen(
            ["/bin/sh", "-c", _HELPER, "courriel-spares", *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # (a full disk: one warning of ours, not one a try)
        )
        assert self._helper.stdin is not None
        self._pipe = self._helper.stdin.fileno()
        os.set_blocking(self._pipe, False)

    def _restart_if_ended(self) -> None:
        """(Under `_lock`.) No ready file where one should be: if the helper ended,
        start another (not more often than RESTART_EVERY: a disk still full would
        end it again at once)."""
        if self._helper.poll() is None or time.monotonic() - self._started < RESTART_EVERY:
            return
        if not self._restarting:  # once, not every RESTART_EVERY while the disk is full
            log.warning(
                "the helper making files ahead for deliveries ended (status %s); "
                "starting it again (deliveries make their own files meanwhile)",
                self._helper.returncode,
            )
            self._restarting = True
        with contextlib.suppress(OSError):
            self._helper.stdin.close()  # type: ignore[union-attr]
        self._pipe = -1
        try:
            self._start_helper()
        except OSError as error:
            log.warning("cannot start the helper making files ahead again: %s", error)

    def take(self, folder: str) -> tuple[int, str] | None:
        """A ready file, open for writing, and its path; None when there is none or
        the folder is on another file system (a link could not put it there)."""
        if not self._on_this_device(folder):
            return None
        with self._lock:
            if self._closing:
                return None
            path = f"{self.directory}/{self._next}"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:  # not made yet, or the helper ended
                self._restart_if_ended()
                return None
            self._next += 1
            self._in_use += 1
            if self._restarting:
                log.warning("files are made ahead for deliveries again")
                self._restarting = False
        return fd, path

    def used(self, count: int) -> None:
        """`count` ready files taken are done with (in Maildirs, or removed after a
        failed write): the helper makes as many again."""
        if not count:
            return
        with self._lock:  # the pipe is closed under the same lock (`close`)
            self._in_use -= count
            if self._pipe >= 0:
                try:
                    os.write(self._pipe, b"\n" * count)
                except OSError:  # the helper ended (the disk full?): deliveries make their own
                    self._pipe = -1
            if not self._in_use:
                self._idle.notify_all()

    def linked(self, path: str) -> None:
        """A ready file is in a Maildir under its second name: its name here goes
        with the next batch (one lock of this directory for many files)."""
        with self._lock:
            self._linked.append(path)
            if len(self._linked) < UNLINK_BATCH:
                if self._timer is None:
                    timer = threading.Timer(UNLINK_AFTER, self._unlink_pending)
                    timer.daemon = True
                    with contextlib.suppress(RuntimeError):  # no thread: the batch will do
                        timer.start()
                        self._timer = timer
                return
            batch, self._linked = self._linked, []
        _unlink(batch)

    def _unlink_pending(self) -> None:
        with self._lock:
            batch, self._linked, self._timer = self._linked, [], None
        _unlink(batch)

    def owns(self, path: str) -> bool:
        return path.startswith(self.directory + "/")

    def not_for(self, folder: str) -> None:
        """A link from the pool into `folder` failed (another mount of the same file
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
        """Stop the helper and remove the pool, once the deliveries still writing
        into ready files are done (or leave it, locked, to the next start if they are
        not within ten seconds)."""
        with self._lock:
            self._closing = True
            self._pipe = -1  # no `used` writes to the pipe's number once it is closed
            done = self._idle.wait_for(lambda: not self._in_use, timeout=10)
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        with contextlib.suppress(OSError):
            self._helper.stdin.close()  # type: ignore[union-attr]
        try:
            self._helper.wait(10)
        except subprocess.TimeoutExpired:
            self._helper.kill()
            self._helper.wait()
        if done:
            self._release()

    def _release(self) -> None:
        _remove(self.directory)
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    def forget(self) -> None:
        """In a process forked from this one: let go of the pipe and the lock, touch
        nothing else."""
        with contextlib.suppress(OSError):
            self._helper.stdin.close()  # type: ignore[union-attr]
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)


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
        _spares = Spares(pools)
    except OSError as error:  # no /bin/sh, a read-only mail root: deliveries make their own
        log.warning("no files made ahead for deliveries: %s", error)


# The ready files of this process being closed (`stop`): a fork meanwhile must let go
# of them too.
_closing: Spares | None = None


def _forget_in_child() -> None:
    """A process forked from a serving one must not take the same ready files (nor
    keep its parent's pool locked once the parent is gone)."""
    global _spares, _closing
    for spares in (_spares, _closing):
        if spares is not None:
            spares.forget()
    _spares = _closing = None


os.register_at_fork(after_in_child=_forget_in_child)


def stop() -> None:
    global _spares, _closing
    _closing, _spares = _spares, None  # no ready file handed out from here on
    if _closing is not None:
        _closing.close()
    _closing = None


def current() -> Spares | None:
    """This process's ready files, if it keeps any. A delivery holds on to what it got
    here until it is done, so that a `stop` meanwhile waits for it."""
    return _spares


def _claim(pools: Path) -> tuple[Path, int]:
    """A new pool, locked: made under a hidden name, locked, and only then given its
    name, so that another process's clean-up (`_remove_stale`) never takes a pool
    still being made."""
    making = pools / f".{os.getpid()}.{secrets.token_hex(6)}"
    making.mkdir(mode=0o700)
    fd = -1
    try:
        fd = os.open(making, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # not on every network file system
        directory = pools / making.name[1:]
        os.rename(making, directory)
    except OSError:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            making.rmdir()
        raise
    return directory, fd


def _unlink(names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _remove_stale(pools: Path) -> None:
    """Remove the pools nobody holds: their processes are gone. (A hidden one is a pool
    being made; left for a minute, it is one whose process died while making it.)"""
    with contextlib.suppress(OSError), os.scandir(pools) as entries:
        for entry in entries:
            if entry.name.startswith(".") and time.time() - _mtime(entry) < 60:
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: its process is alive
                os.close(fd)
                continue
            try:
                _remove(entry.path)
            finally:
                os.close(fd)


def _mtime(entry: os.DirEntry[str]) -> float:
    try:
        return entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return time.time()


def _remove(directory: str) -> None:
    """Remove a pool; the helper of a process killed a moment ago may still be making
    its first files there (it ends at its next read of the closed pipe)."""
    for _ in range(100):
        shutil.rmtree(directory, ignore_errors=True)
        if not os.path.lexists(directory):
            return
        time.sleep(0.01)
