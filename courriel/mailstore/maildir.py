"""Writing messages into Maildirs the durable way, and Maildir++ folders.

A message is written to `tmp/` (or to an empty file a helper made ready ahead in the
mail root, `spares`), fsynced, renamed into `new/` (or `cur/` with flags),
and the directory is fsynced: once `deliver` returns, the message survives a crash.
That is what lets the SMTP server answer "250" only after this call.

Messages are stored exactly as received, with CRLF line ends, so IMAP and POP3 serve
the bytes as they are and the sizes in the file name (`S=`, and Dovecot's `W=`) are
the RFC822.SIZE clients see. Dovecot reads such files as they are.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import random
import shutil
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from courriel.mailstore import quota, spares

SPECIAL_FOLDERS = ("Sent", "Drafts", "Trash", "Junk")
_counter = itertools.count()
_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"


class MaildirError(OSError):
    """A Maildir could not be written (disk full, permissions...)."""


@dataclass(frozen=True)
class Stored:
    path: Path
    size: int


def unique_name(size: int) -> str:
    """Dovecot-style unique name: `<sec>.M<usec>P<pid>Q<n>R<rand>.<host>,S=<size>,W=<size>`."""
    now = time.time()
    seconds = int(now)
    micro = int((now - seconds) * 1_000_000)
    return (
        f"{seconds}.M{micro}P{os.getpid()}Q{next(_counter)}R{random.getrandbits(32):08x}"
        f".{_HOST},S={size},W={size}"
    )


def folder_path(maildir: Path, folder: str = "") -> Path:
    """The directory of a folder: "" (INBOX) is the Maildir itself; "Sent" is `.Sent`;
    a nested "Archive/2024" is `.Archive.2024` (Maildir++ with '.' as separator)."""
    if not folder or folder.upper() == "INBOX":
        return maildir
    return maildir / ("." + folder.replace("/", "."))


def create_folder(maildir: Path, folder: str) -> Path:
    path = folder_path(maildir, folder)
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    marker = path / "maildirfolder"
    if path != maildir and not marker.exists():
        marker.touch(mode=0o600)
    return path


def write_all(fd: int, chunks: Iterable[bytes]) -> int:
    """Write every chunk (os.write may write less than asked); returns the size. A
    chunk with `write_to(fd)` (a big message's spool file) writes itself."""
    size = 0
    for chunk in chunks:
        write_to = getattr(chunk, "write_to", None)
        if write_to is not None:
            size += write_to(fd)
            continue
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]
        size += len(chunk)
    return size


def fsync_dir(path: Path) -> None:
    _fsync_opened(path, os.O_DIRECTORY)


def _fsync_opened(path: Path | str, flags: int) -> None:
    """Open `path` read-only only to flush it: a directory's entries, or a file whose
    writing descriptor is already closed."""
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _DirectorySync:
    """Group commit of directory fsyncs: when several threads have just renamed files
    into one directory, a single fsync started after all the renames covers them all,
    so concurrent deliveries to one mailbox do not queue up one fsync each."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._states: dict[Path, list] = {}  # path -> [lock, requested, done]

    def sync(self, path: Path) -> None:
        with self._guard:
            state = self._states.setdefault(path, [threading.Lock(), 0, 0])
            state[1] += 1
            ticket = state[1]
        with state[0]:
            if state[2] >= ticket:
                return  # an fsync that began after our rename already covered it
            with self._guard:
                target = state[1]
            fsync_dir(path)
            state[2] = target


sync_directory = _DirectorySync().sync


def deliver(
    maildir: Path,
    data: bytes | Iterable[bytes],
    *,
    folder: str = "",
    flags: str = "",
    mtime: float | None = None,
    durable: bool = True,
    seen_by_client: bool = False,
    name: str | None = None,
) -> Stored:
    """Store one message; returns its final path. Raises MaildirError with nothing left
    behind when the disk is full or the Maildir cannot be written.

    Delivered mail goes to `new/`; a message a client stores itself (IMAP APPEND,
    `seen_by_client`) goes to `cur/` with its flags, as Dovecot does. `name` gives the
    final file name chosen in advance (the delivery journal replays by name)."""
    [stored] = deliver_many(
        [Delivery(maildir, data, folder, flags, mtime, seen_by_client, name)], durable=durable
    )
    return stored


@dataclass(frozen=True)
class Delivery:
    """One message for one Maildir, as `deliver_many` takes it. A chunk of `data` may
    be an object with `write_to(fd) -> int` (a big message's spool file)."""

    maildir: Path
    data: bytes | Iterable[bytes]
    folder: str = ""
    flags: str = ""
    mtime: float | None = None
    seen_by_client: bool = False
    name: str | None = None


def deliver_many(deliveries: list[Delivery], *, durable: bool = True) -> list[Stored]:
    """Store messages in two steps: every file written (and flushed) in its folder's
    `tmp/`, or in a file made ready ahead (`spares`), first; then all moved into
    place. A failure in either step leaves nothing behind in any Maildir (what the
    second step had put in place is taken back), so one message for several mailboxes
    is delivered to all or to none, and the sender's retry makes no second copy."""
    # Paths as strings on this path of every delivery: five pathlib joins cost more
    # than the system calls they name.
    written: list[tuple[Delivery, str, str, int]] = []
    pool = spares.current()
    taken = 0  # ready files (`spares`) used: the helper makes as many again at the end
    try:
        try:
            for item in deliveries:
                target = str(folder_path(item.maildir, item.folder))
                spare = pool.take(target) if pool is not None else None
                if spare is not None:
                    fd, tmp_path = spare
                    taken += 1
                else:
                    fd, tmp_path = _create_in_tmp(item, target)
                written.append((item, target, tmp_path, 0))
                try:
                    size = write_all(fd, [item.data] if _single(item.data) else item.data)
                    if durable:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                if item.mtime is not None:
                    os.utime(tmp_path, (item.mtime, item.mtime))
                written[-1] = (item, target, tmp_path, size)
        except BaseException as error:
            _remove_files(written)
            if not isinstance(error, OSError):
                raise
            where = written[-1][1] if written else deliveries[0].maildir
            raise MaildirError(
                error.errno, f"cannot store message in {where}: {error.strerror}"
            ) from None
        stored: list[Stored] = []
        for index, (item, target, tmp_path, size) in enumerate(written):
            try:
                stored.append(_move(item, target, tmp_path, size, durable, pool))
            except BaseException:
                _remove_files(written[index + 1 :])  # written, never to be seen
                _take_back(written[:index], stored)
                raise
        return stored
    finally:
        if pool is not None:
            pool.used(taken)


def _take_back(written: list[tuple[Delivery, str, str, int]], stored: list[Stored]) -> None:
    """The copies already in place when a later one could not go in: seen for a
    moment, not kept, since the sender is told to try again (a copy a client has
    moved meanwhile stays where it is)."""
    _remove_files(written)  # ready files' names left in the pool
    for (item, _target, _tmp_path, _size), copy in zip(written, stored, strict=True):
        try:
            os.unlink(copy.path)
        except OSError:
            continue
        quota.add(item.maildir, -copy.size, -1)


def _remove_files(written: list[tuple[Delivery, str, str, int]]) -> None:
    for _item, _target, path, _size in written:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _create_in_tmp(item: Delivery, target: str) -> tuple[int, str]:
    tmp_path = f"{target}/tmp/{time.time():.6f}.{os.getpid()}.{next(_counter)}"
    new_file = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return os.open(tmp_path, new_file, 0o600), tmp_path
    except FileNotFoundError:  # a new mailbox or folder: made on first use
        _make_folder(item)
        return os.open(tmp_path, new_file, 0o600), tmp_path


def _make_folder(item: Delivery) -> None:
    create_folder(item.maildir, item.folder) if item.folder else _create_inbox(item.maildir)


def _move(
    item: Delivery,
    target: str,
    tmp_path: str,
    size: int,
    durable: bool,
    pool: spares.Spares | None = None,
) -> Stored:
    """Into `new/` (or `cur/` with flags): from this moment the message is seen."""
    name = item.name or unique_name(size)
    if item.flags or item.seen_by_client:
        final = f"{target}/cur/{name}:2,{''.join(sorted(set(item.flags)))}"
    else:
        final = f"{target}/new/{name}"
    placed = False
    try:
        if pool is not None and pool.owns(tmp_path):
            linked = _place_ready_file(item, target, tmp_path, final, durable, pool)
            placed = True
            if linked:
                if durable:  # by the pool's name: a client may have moved the message
                    _fsync_opened(tmp_path, os.O_NOFOLLOW | os.O_CLOEXEC)
                pool.linked(tmp_path)
        else:
            os.rename(tmp_path, final)
            placed = True
        if durable:
            sync_directory(Path(final).parent)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        if placed:  # seen for a moment, not kept: the sender is told to try again
            with contextlib.suppress(OSError):
                os.unlink(final)
        raise MaildirError(
            error.errno, f"cannot store message in {target}: {error.strerror}"
        ) from None
    quota.add(item.maildir, size, 1)
    return Stored(Path(final), size)


# A file system (or a mount) where a second name cannot be made: vfat, some FUSE and
# network mounts, a file at its link limit.
_NO_LINK = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS})


def _place_ready_file(
    item: Delivery, target: str, ready: str, final: str, durable: bool, pool: spares.Spares
) -> bool:
    """A ready file (`spares`) goes in under a second name (`link`): a rename would
    also lock the pool's directory, where the helper may be making the next file at
    that moment (a walk of up to a millisecond on ext4 without a journal). True: it
    is in under both names; the pool's is removed afterwards, a batch at a time
    (`Spares.linked`), and a durable delivery syncs the file again, so that its count
    of names is on disk with it (`_move`).

    A file already there under that name (the journal's replay after a crash) is
    replaced, as a rename would. A folder deleted since it was looked at is made
    again. Where no second name can be made, the file is renamed; on another mount of
    the same file system (EXDEV) it is copied into the folder's `tmp/`; either way
    that folder makes its own files from then on (and False: no pool name left)."""
    for attempt in (1, 2):
        try:
            os.link(ready, final)
            break
        except FileExistsError:  # a replay repairing a copy a crash left short: replaced
            os.rename(ready, final)
            return False
        except FileNotFoundError:
            if attempt == 2 or not os.path.exists(ready):
                raise
            _make_folder(item)
        except OSError as error:
            if error.errno == errno.EXDEV:
                pool.not_for(target)
                _copy_in(item, target, ready, final, durable)
                return False
            if error.errno in _NO_LINK:
                pool.not_for(target)
                os.rename(ready, final)
                return False
            raise
    return True


def _copy_in(item: Delivery, target: str, ready: str, final: str, durable: bool) -> None:
    """The message, written in a ready file another mount cannot take, copied into
    the folder's `tmp/` (flushed like any other) and moved in from there."""
    fd, tmp_path = _create_in_tmp(item, target)
    try:
        with os.fdopen(fd, "wb") as copy, open(ready, "rb") as source:
            shutil.copyfileobj(source, copy)
            copy.flush()
            if durable:
                os.fsync(copy.fileno())
        if item.mtime is not None:
            os.utime(tmp_path, (item.mtime, item.mtime))
        os.rename(tmp_path, final)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise
    os.unlink(ready)


def _single(data: object) -> bool:
    return isinstance(data, bytes | bytearray | memoryview) or hasattr(data, "write_to")


def deliver_file(
    maildir: Path,
    source: Path,
    size: int,
    *,
    folder: str = "",
    flags: str = "",
    mtime: float | None = None,
) -> Stored:
    """Store a message already written (and fsynced) in the Maildir's `tmp/` — an IMAP
    APPEND streamed to disk as it arrived (see `spool`) — by renaming it into the
    folder's `cur/`: no copy, whatever its size."""
    target = folder_path(maildir, folder)
    if not (target / "tmp").is_dir():
        create_folder(maildir, folder) if folder else _create_inbox(maildir)
    final = target / "cur" / f"{unique_name(size)}:2,{''.join(sorted(set(flags)))}"
    try:
        if mtime is not None:
            os.utime(source, (mtime, mtime))
        os.rename(source, final)
        sync_directory(final.parent)
    except OSError as error:
        raise MaildirError(
            error.errno, f"cannot store message in {target}: {error.strerror}"
        ) from None
    quota.add(maildir, size, 1)
    return Stored(final, size)


def _create_inbox(maildir: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)


def clean_tmp(maildir: Path, older_than: float = 36 * 3600) -> int:
    """Remove leftovers of interrupted writes (Maildir rule: tmp files older than 36 h)."""
    removed = 0
    limit = time.time() - older_than
    for folder in [maildir, *(p for p in maildir.glob(".*") if p.is_dir())]:
        tmp = folder / "tmp"
        if not tmp.is_dir():
            continue
        for entry in os.scandir(tmp):
            try:
                if entry.stat().st_mtime < limit:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                continue
    return removed
