"""Copying the mail root into a new snapshot tree, linking what did not change.

Maildir messages never change once written, except for their name: flags live after
`:2,` and a message moves from `new/` to `cur/` when a client first sees it. So a
message is matched to the previous snapshot's tree by folder and base name (the name
before `:2,`, which carries the size `S=`) and hard-linked to it under its current
name, without being read or even stat'ed. Other files (`maildirsize`, Dovecot's
index files) are linked when their size and modification time are unchanged, as
rsync does. Everything else is copied and hashed in one pass. What changed is
recorded as the snapshot's manifest delta (courriel.backup.manifest).

The live mailboxes keep changing while this runs. A message that disappears between
the directory listing and the copy was either deleted (skipped) or renamed by a flag
change (found again by its base name in `cur/` or `new/`); a base name is taken once
per folder, so a renamed message is never stored twice. `tmp/` contents (deliveries
in progress) are never copied.

Errors writing the backup raise DestinationError (disk full, disk gone); errors
reading a live file other than its disappearance are counted and reported.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import multiprocessing
import operator
import os
import signal
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import xxhash

from courriel.backup.manifest import Delta

_BUFFER = 1 << 20
_MESSAGE_DIRS = (b"cur", b"new")
_FLAGS = b":2,"
_entry_name = operator.attrgetter("name")
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


class DestinationError(Exception):
    """Writing to the backup directory failed: the snapshot cannot be completed."""

    def __init__(self, error: OSError, path: bytes | str) -> None:
        super().__init__(f"{os.fsdecode(path)}: {error.strerror}")
        self.errno = error.errno
        self.strerror = error.strerror or str(error)
        self.path = os.fsdecode(path)

    def __reduce__(self) -> tuple[Callable[..., DestinationError], tuple[object, ...]]:
        # Raised in a worker process, it comes back to the parent through pickle.
        return _destination_error, (self.errno, self.strerror, self.path)


def _destination_error(code: int | None, strerror: str, path: str) -> DestinationError:
    return DestinationError(OSError(code, strerror), path)


class Interrupted(Exception):
    """Asked to stop (the server is shutting down)."""


class WorkerLost(Exception):
    """A worker process ended without its result (killed from outside: out of memory,
    an administrator); the snapshot cannot be completed."""


class Flag(Protocol):
    """A threading.Event, or a multiprocessing one for the worker processes."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...


class _SourceError(Exception):
    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class Totals:
    files: int = 0
    directories: int = 0
    bytes: int = 0
    copied_files: int = 0
    bytes_copied: int = 0
    linked_files: int = 0
    bytes_linked: int = 0
    vanished: int = 0
    skipped: int = 0
    unreadable: list[str] = field(default_factory=list)
    # (domain, login) -> [files, bytes], for listings and per-customer views.
    mailboxes: dict[tuple[str, str], list[int]] = field(default_factory=dict)


Progress = Callable[[Totals, bytes], None]


def size_in_name(base: bytes) -> int | None:
    start = base.find(b",S=")
    if start < 0:
        return None
    end = base.find(b",", start + 3)
    try:
        return int(base[start + 3 : end if end > 0 else None])
    except ValueError:
        return None


def _mailbox_of(rel: bytes) -> tuple[str, str] | None:
    """`<domain>/homes/<login>/...` (courriel.mailstore.layout) -> (domain, login)."""
    parts = rel.split(b"/", 3)
    if len(parts) >= 3 and parts[1] == b"homes":
        return os.fsdecode(parts[0]), os.fsdecode(parts[2])
    return None


class Snapshotter:
    """One snapshot: the top of the tree is walked here, then each mailbox home
    (`<domain>/homes/<login>`) is a unit of work for `workers` processes.

    Processes rather than threads: copying a message is eight system calls, and
    threads hand Python's GIL over at every one of them (measured on 100,000
    messages: two threads used 50 % more CPU than one, and were slower than rsync).
    A unit's results (its manifest lines and counts) come back to this process."""

    def __init__(
        self,
        source: Path,
        target: Path,
        previous_root: Path | None = None,
        *,
        recopy: frozenset[bytes] = frozenset(),
        progress: Progress | None = None,
        workers: int = 2,
        interrupt: Flag | None = None,
    ) -> None:
        self.interrupt: Flag = interrupt or threading.Event()
        self.src = os.fsencode(source)
        self.dst = os.fsencode(target)
        self.prev_root = os.fsencode(previous_root) if previous_root else b""
        self.recopy = recopy  # paths verify found damaged: never link to them again
        self.progress = progress
        self.workers = max(1, workers)
        self.delta = Delta()
        self.seen: set[tuple[bytes, bytes]] = set()
        self.folders: dict[bytes, dict[bytes, tuple[bytes, bytes]]] = {}
        self.previous_names: dict[bytes, list[bytes]] = {}
        self.kept: dict[bytes, set[bytes]] = {}  # linked under the same path
        self.parts: list[Totals] = []
        self.failure: BaseException | None = None

    def run(self) -> tuple[Delta, Totals]:
        try:
            os.mkdir(self.dst, 0o700)
        except OSError as error:
            raise DestinationError(error, self.dst) from None
        top = self._worker()
        units: list[bytes] = []
        stack = [b""]
        while stack:
            for sub in top.directory(stack.pop()):
                (units if sub.count(b"/") >= 2 else stack).append(sub)
        if self.workers == 1 or len(units) < 2:
            self._drain(top, deque(units))
        else:
            self._in_processes(units)
        if self.failure is not None:
            raise self.failure
        self._mark_gone()
        return self.delta, self.totals()

    def _mark_gone(self) -> None:
        """Files of the previous snapshot's directories that this one no longer has."""
        for rel, names in self.previous_names.items():
            lines = self.delta.dirs.get(rel)
            if lines is not None:
                kept = self.kept.get(rel, set())
                lines += [Delta.gone(name) for name in names if name not in kept]

    def _in_processes(self, units: list[bytes]) -> None:
        # "spawn": `courriel serve` runs backups in a thread, and forking a process
        # with threads can leave the child holding a lock forever.
        context = multiprocessing.get_context("spawn")
        stop = context.Event()  # the workers look at it before each directory
        pool = ProcessPoolExecutor(
            min(self.workers, len(units)),
            mp_context=context,
            initializer=_start_worker_process,
            initargs=(os.getpid(), stop, self.src, self.dst, self.prev_root, self.recopy),
        )
        futures: dict[Future[tuple[dict[bytes, list[bytes]], Totals]], bytes] = {}
        try:
            futures = {pool.submit(_snapshot_unit, unit): unit for unit in units}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                if self.interrupt.is_set():
                    raise Interrupted()
                for future in done:
                    try:
                        dirs, totals = future.result()
                    except BrokenProcessPool:
                        raise WorkerLost() from None
                    self.delta.dirs.update(dirs)
                    self.parts.append(totals)
                    if self.progress is not None:
                        self.progress(self.totals(), futures[future])
        finally:
            # Interrupted or failed: the units in progress stop at their next
            # directory (the snapshot is thrown away); the others never start.
            stop.set()
            for future in futures:
                future.cancel()
            pool.shutdown(wait=True)

    def _worker(self) -> _Worker:
        worker = _Worker(self)
        self.parts.append(worker.totals)
        return worker

    def _drain(self, worker: _Worker, pending: deque[bytes]) -> None:
        try:
            while self.failure is None:
                try:
                    unit = pending.popleft()
                except IndexError:
                    return
                stack = [unit]
                while stack and self.failure is None:
                    stack.extend(worker.directory(stack.pop()))
        except BaseException as error:  # re-raised by run() or by the worker process
            if self.failure is None:
                self.failure = error

    def totals(self) -> Totals:
        combined = Totals()
        for t in self.parts:
            combined.files += t.files
            combined.directories += t.directories
            combined.bytes += t.bytes
            combined.copied_files += t.copied_files
            combined.bytes_copied += t.bytes_copied
            combined.linked_files += t.linked_files
            combined.bytes_linked += t.bytes_linked
            combined.vanished += t.vanished
            combined.skipped += t.skipped
            combined.unreadable += t.unreadable
            for key, counts in t.mailboxes.items():
                into = combined.mailboxes.setdefault(key, [0, 0])
                into[0] += counts[0]
                into[1] += counts[1]
        return combined

    def previous_listing(self, rel: bytes) -> list[bytes]:
        if not self.prev_root:
            return []
        try:
            with os.scandir(self.prev_root + b"/" + rel if rel else self.prev_root) as entries:
                names = [e.name for e in entries if e.is_file(follow_symlinks=False)]
        except OSError:
            names = []
        self.previous_names[rel] = names
        return names

    def folder_index(self, folder: bytes) -> dict[bytes, tuple[bytes, bytes]]:
        """Base name -> (directory, name) of the folder's messages last time."""
        index = self.folders.get(folder)
        if index is None:
            index = {}
            for sub in _MESSAGE_DIRS:
                rel = folder + b"/" + sub
                for name in self.previous_listing(rel):
                    index[name.partition(_FLAGS)[0]] = (rel, name)
            self.folders[folder] = index
        return index


class _Worker:
    """The state of one walker: its copy buffer and its counts."""

    def __init__(self, job: Snapshotter) -> None:
        self.job = job
        self.totals = Totals()
        self.buffer = bytearray(_BUFFER)
        self.view = memoryview(self.buffer)
        self._tick = 0

    def directory(self, rel: bytes) -> list[bytes]:
        job = self.job
        if job.interrupt.is_set():
            raise Interrupted()
        src_dir = job.src + b"/" + rel if rel else job.src
        try:
            with os.scandir(src_dir) as listing:
                # By name, not in the listing's (hash) order: ext4 fills a directory's
                # blocks to ~50 % when entries arrive in hash order, ~75 % otherwise,
                # and every snapshot's directories are its own (measured: a 450-message
                # cur/ takes 40 KiB instead of 52 KiB).
                entries = sorted(listing, key=_entry_name)
        except FileNotFoundError:
            return []  # a folder or mailbox deleted while the snapshot runs
        except OSError as error:
            self.totals.unreadable.append(f"{os.fsdecode(src_dir)}: {error.strerror}")
            return []
        if rel:
            self._mkdir(job.dst + b"/" + rel)
        self.totals.directories += 1
        lines = job.delta.add_dir(rel)
        if job.progress is not None:
            job.progress(job.totals(), rel)
        name = rel.rpartition(b"/")[2]
        if name == b"tmp":
            return []
        mailbox = _mailbox_of(rel)
        totals = self.totals
        before_files, before_bytes = totals.files, totals.bytes
        subdirs: list[bytes] = []
        prefix = rel + b"/" if rel else b""
        if name in _MESSAGE_DIRS and rel != name:
            folder = rel.rpartition(b"/")[0]
            index = job.folder_index(folder)
            kept = job.kept.setdefault(rel, set())
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    self._message(rel, folder, entry.name, index, lines, kept)
                elif entry.is_dir(follow_symlinks=False):
                    subdirs.append(prefix + entry.name)
                else:
                    totals.skipped += 1
        else:
            previous = set(job.previous_listing(rel))
            kept = job.kept.setdefault(rel, set())
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(prefix + entry.name)
                elif entry.is_file(follow_symlinks=False):
                    self._other(rel, entry, entry.name in previous, lines, kept)
                else:
                    totals.skipped += 1
        # Messages only move from new/ to cur/: taking new/ first (the stack pops the
        # last one) means a message moving meanwhile is seen in one of the two listings.
        subdirs.sort(key=lambda sub: sub.endswith(b"/new"))
        if mailbox is not None:
            counts = totals.mailboxes.setdefault(mailbox, [0, 0])
            counts[0] += totals.files - before_files
            counts[1] += totals.bytes - before_bytes
        return subdirs

    # --- one file ---------------------------------------------------------------------

    def _message(
        self,
        rel: bytes,
        folder: bytes,
        name: bytes,
        index: dict[bytes, tuple[bytes, bytes]],
        lines: list[bytes],
        kept: set[bytes],
    ) -> None:
        job = self.job
        base = name.partition(_FLAGS)[0]
        key = (folder, base)
        if key in job.seen:
            return  # already taken under its other name (renamed during the run)
        job.seen.add(key)
        found = index.get(base)
        size = size_in_name(base)
        if found is not None and size is not None:
            prev_dir, prev_name = found
            previous = prev_dir + b"/" + prev_name
            if previous not in job.recopy and self._link(
                job.prev_root + b"/" + previous, job.dst + b"/" + rel + b"/" + name
            ):
                if prev_dir == rel and prev_name == name:
                    kept.add(name)
                else:  # a flag change: the same data under its new name
                    lines.append(Delta.linked(previous, name))
                self._count(size, linked=True)
                return
        self._copy_message(rel, folder, name, base, lines)

    def _copy_message(
        self, rel: bytes, folder: bytes, name: bytes, base: bytes, lines: list[bytes]
    ) -> None:
        try:
            self._copy(rel, name, lines)
            return
        except _SourceError as failure:
            if failure.error.errno != errno.ENOENT:
                self._unreadable(rel, name, failure.error)
                return
        # Gone: deleted, or renamed by a flag change. Look for it under its new name.
        job = self.job
        for sub in _MESSAGE_DIRS:
            where = folder + b"/" + sub
            try:
                names = os.listdir(job.src + b"/" + where)
            except OSError:
                continue
            for other in names:
                if other != name and other.partition(_FLAGS)[0] == base:
                    self._mkdir(job.dst + b"/" + where)
                    try:
                        self._copy(where, other, job.delta.add_dir(where))
                        return
                    except _SourceError:
                        break
        self.totals.vanished += 1

    def _other(
        self,
        rel: bytes,
        entry: os.DirEntry[bytes],
        in_previous: bool,
        lines: list[bytes],
        kept: set[bytes],
    ) -> None:
        job = self.job
        path = rel + b"/" + entry.name if rel else entry.name
        if in_previous and path not in job.recopy:
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                self.totals.vanished += 1
                return
            previous = job.prev_root + b"/" + path
            try:
                old = os.stat(previous, follow_symlinks=False)
            except OSError:
                old = None
            if (
                old is not None
                and old.st_size == stat.st_size
                and old.st_mtime_ns == stat.st_mtime_ns
                and self._link(previous, job.dst + b"/" + path)
            ):
                kept.add(entry.name)
                self._count(stat.st_size, linked=True)
                return
        try:
            self._copy(rel, entry.name, lines)
        except _SourceError as failure:
            if failure.error.errno == errno.ENOENT:
                self.totals.vanished += 1
            else:
                self._unreadable(rel, entry.name, failure.error)

    def _link(self, previous: bytes, target: bytes) -> bool:
        try:
            os.link(previous, target)
        except FileNotFoundError:
            return False  # missing from the previous snapshot: copy it afresh
        except OSError as error:
            if error.errno == errno.EMLINK:
                return False
            raise DestinationError(error, target) from None
        return True

    def _copy(self, rel: bytes, name: bytes, lines: list[bytes]) -> None:
        """Copy and hash one live file (one read pass); keeps its mode and times."""
        job = self.job
        tail = rel + b"/" + name if rel else name
        source, target = job.src + b"/" + tail, job.dst + b"/" + tail
        try:
            try:
                # Reading must not dirty the live inode (atime): less journal work.
                fd_in = os.open(source, _READ | os.O_NOATIME)
            except PermissionError:  # O_NOATIME needs the file's owner
                fd_in = os.open(source, _READ)
            stat = os.fstat(fd_in)
        except OSError as error:
            raise _SourceError(error) from None
        try:
            try:
                fd_out = os.open(target, _CREATE, stat.st_mode & 0o777)
            except OSError as error:
                raise DestinationError(error, target) from None
            digest = xxhash.xxh3_128()
            size = 0
            buffer, view = self.buffer, self.view
            try:
                while True:
                    try:
                        count = os.readv(fd_in, [buffer])
                    except OSError as error:
                        raise _SourceError(error) from None
                    if count:
                        chunk = view[:count]
                        digest.update(chunk)
                        while chunk:
                            chunk = chunk[os.write(fd_out, chunk) :]
                        size += count
                    if count < _BUFFER:
                        break
                os.utime(fd_out, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            except OSError as error:
                raise DestinationError(error, target) from None
            except _SourceError:
                os.close(fd_out)
                fd_out = -1
                os.unlink(target)
                raise
            finally:
                if fd_out >= 0:
                    os.close(fd_out)
        finally:
            os.close(fd_in)
        lines.append(Delta.copied(digest.hexdigest().encode("ascii"), size, stat.st_mtime_ns, name))
        self._count(size, linked=False)

    def _mkdir(self, path: bytes) -> None:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as error:
            raise DestinationError(error, path) from None

    def _count(self, size: int, *, linked: bool) -> None:
        totals = self.totals
        totals.files += 1
        totals.bytes += size
        if linked:
            totals.linked_files += 1
            totals.bytes_linked += size
        else:
            totals.copied_files += 1
            totals.bytes_copied += size
        self._tick += 1
        if self._tick >= 1000:
            self._progress()

    def _progress(self) -> None:
        self._tick = 0
        if self.job.progress is not None:
            self.job.progress(self.job.totals(), b"")

    def _unreadable(self, rel: bytes, name: bytes, error: OSError) -> None:
        path = os.fsdecode(rel + b"/" + name)
        self.totals.unreadable.append(f"{path}: {error.strerror}")


# --- worker processes ---------------------------------------------------------------

_unit_job: tuple[Flag, bytes, bytes, bytes, frozenset[bytes]] | None = None


def _start_worker_process(
    parent: int,
    stop: Flag,
    src: bytes,
    dst: bytes,
    prev_root: bytes,
    recopy: frozenset[bytes],
) -> None:
    from courriel.processes import die_with_parent

    # Killed with `backup run` (even by SIGKILL): an orphan would go on writing into
    # a snapshot directory that the next run is cleaning up.
    die_with_parent(parent, signal.SIGKILL)
    # Ctrl-C and `systemctl stop` reach every process of the group: the parent decides,
    # and tells the workers through `stop`.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    global _unit_job
    _unit_job = (stop, src, dst, prev_root, recopy)


def _snapshot_unit(unit: bytes) -> tuple[dict[bytes, list[bytes]], Totals]:
    """One mailbox home, in a worker process: its manifest lines and its counts."""
    assert _unit_job is not None
    stop, src, dst, prev_root, recopy = _unit_job
    job = Snapshotter(
        Path(os.fsdecode(src)),
        Path(os.fsdecode(dst)),
        Path(os.fsdecode(prev_root)) if prev_root else None,
        recopy=recopy,
        workers=1,
        interrupt=stop,
    )
    worker = job._worker()
    job._drain(worker, deque([unit]))
    if job.failure is not None:
        raise job.failure
    job._mark_gone()
    return job.delta.dirs, worker.totals


def take_snapshot(
    source: Path,
    target: Path,
    previous_root: Path | None = None,
    *,
    recopy: frozenset[bytes] = frozenset(),
    progress: Progress | None = None,
    workers: int = 2,
    interrupt: Flag | None = None,
) -> tuple[Delta, Totals]:
    return Snapshotter(
        source,
        target,
        previous_root,
        recopy=recopy,
        progress=progress,
        workers=workers,
        interrupt=interrupt,
    ).run()


_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def flush_filesystem(path: Path) -> None:
    """syncfs(2) the file system holding `path`: everything written there is on disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise DestinationError(OSError(code, os.strerror(code)), os.fsencode(path))
    finally:
        os.close(fd)
