"""Copying the mail root into a new snapshot tree, linking what did not change.

Maildir messages never change once written, except for their name: flags live after
`:2,` and a message moves from `new/` to `cur/` when a client first sees it. So a
message is matched to the previous snapshot by folder and base name (the name before
`:2,`) and hard-linked to it under its current name, without being read again; its
size (the `S=` in the name) must agree. Other files (`maildirsize`, Dovecot's index
files) are linked when their size and modification time are unchanged, as rsync
does. Everything else is copied and hashed in one pass.

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
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from courriel.backup.manifest import Manifest, escape, file_line, unescape

_BUFFER = 1 << 20
_MESSAGE_DIRS = (b"cur", b"new")
_FLAGS = b":2,"
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


class DestinationError(Exception):
    """Writing to the backup directory failed: the snapshot cannot be completed."""

    def __init__(self, error: OSError, path: bytes | str) -> None:
        super().__init__(f"{os.fsdecode(path)}: {error.strerror}")
        self.errno = error.errno
        self.strerror = error.strerror or str(error)
        self.path = os.fsdecode(path)


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
    for part in base.split(b","):
        if part.startswith(b"S="):
            try:
                return int(part[2:])
            except ValueError:
                return None
    return None


def _mailbox_of(rel: bytes) -> tuple[str, str] | None:
    """`<domain>/homes/<login>/...` (courriel.mailstore.layout) -> (domain, login)."""
    parts = rel.split(b"/", 3)
    if len(parts) >= 3 and parts[1] == b"homes":
        return os.fsdecode(parts[0]), os.fsdecode(parts[2])
    return None


class Snapshotter:
    def __init__(
        self,
        source: Path,
        target: Path,
        previous: Manifest | None = None,
        previous_root: Path | None = None,
        *,
        recopy: frozenset[bytes] = frozenset(),
        progress: Progress | None = None,
    ) -> None:
        self.src = os.fsencode(source)
        self.dst = os.fsencode(target)
        self.previous = previous or Manifest()
        self.prev_root = os.fsencode(previous_root) if previous_root else b""
        self.recopy = recopy  # paths verify found damaged: never link to them again
        self.progress = progress
        self.manifest = Manifest()
        self.totals = Totals()
        self.buffer = bytearray(_BUFFER)
        self.view = memoryview(self.buffer)
        self.seen: set[tuple[bytes, bytes]] = set()
        self.folders: dict[bytes, dict[bytes, tuple[bytes, bytes]]] = {}
        self._tick = 0

    # --- walking ----------------------------------------------------------------------

    def run(self) -> tuple[Manifest, Totals]:
        try:
            os.mkdir(self.dst, 0o700)
        except OSError as error:
            raise DestinationError(error, self.dst) from None
        stack = [b""]
        while stack:
            rel = stack.pop()
            stack.extend(self._directory(rel))
        return self.manifest, self.totals

    def _directory(self, rel: bytes) -> list[bytes]:
        src_dir = self.src + b"/" + rel if rel else self.src
        dst_dir = self.dst + b"/" + rel if rel else self.dst
        try:
            with os.scandir(src_dir) as listing:
                entries = list(listing)
        except FileNotFoundError:
            return []  # a folder or mailbox deleted while the snapshot runs
        except OSError as error:
            self.totals.unreadable.append(f"{os.fsdecode(src_dir)}: {error.strerror}")
            return []
        if rel:
            self._mkdir(dst_dir)
        self.totals.directories += 1
        lines = self.manifest.add_dir(rel)
        if self.progress is not None:
            self.progress(self.totals, rel)
        name = rel.rpartition(b"/")[2]
        if name == b"tmp":
            return []
        mailbox = _mailbox_of(rel)
        counts = self.totals.mailboxes.setdefault(mailbox, [0, 0]) if mailbox else None
        before = (self.totals.files, self.totals.bytes)
        subdirs: list[bytes] = []
        prefix = rel + b"/" if rel else b""
        if name in _MESSAGE_DIRS and rel != name:
            folder = rel.rpartition(b"/")[0]
            index = self._folder_index(folder)
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(prefix + entry.name)
                elif entry.is_file(follow_symlinks=False):
                    self._message(rel, folder, entry.name, index, lines)
                else:
                    self.totals.skipped += 1
        else:
            previous = {
                unescape(line.split(b" ", 3)[3]): line for line in self.previous.dirs.get(rel, ())
            }
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(prefix + entry.name)
                elif entry.is_file(follow_symlinks=False):
                    self._other(rel, entry, previous.get(entry.name), lines)
                else:
                    self.totals.skipped += 1
        if counts is not None:
            counts[0] += self.totals.files - before[0]
            counts[1] += self.totals.bytes - before[1]
        return subdirs

    def _folder_index(self, folder: bytes) -> dict[bytes, tuple[bytes, bytes]]:
        """Base name -> (directory, manifest line) of the folder's messages last time."""
        index = self.folders.get(folder)
        if index is None:
            index = {}
            for sub in _MESSAGE_DIRS:
                rel = folder + b"/" + sub
                for line in self.previous.dirs.get(rel, ()):
                    name = line.split(b" ", 3)[3]
                    index[unescape(name).partition(_FLAGS)[0]] = (rel, line)
            self.folders[folder] = index
        return index

    # --- one file ---------------------------------------------------------------------

    def _message(
        self,
        rel: bytes,
        folder: bytes,
        name: bytes,
        index: dict[bytes, tuple[bytes, bytes]],
        lines: list[bytes],
    ) -> None:
        base = name.partition(_FLAGS)[0]
        key = (folder, base)
        if key in self.seen:
            return  # already taken under its other name (renamed during the run)
        self.seen.add(key)
        found = index.get(base)
        if found is not None:
            prev_dir, line = found
            checksum, size_text, mtime_text, prev_name = line.split(b" ", 3)
            size = int(size_text)
            if size_in_name(base) == size and (prev_dir + b"/" + prev_name) not in self.recopy:
                if self._link(prev_dir + b"/" + unescape(prev_name), rel + b"/" + name):
                    if prev_name != escape(name):
                        line = file_line(checksum, size, int(mtime_text), name)
                    lines.append(line)
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
        for sub in _MESSAGE_DIRS:
            where = folder + b"/" + sub
            try:
                names = os.listdir(self.src + b"/" + where)
            except OSError:
                continue
            for other in names:
                if other != name and other.partition(_FLAGS)[0] == base:
                    self._mkdir(self.dst + b"/" + where)
                    try:
                        self._copy(where, other, self.manifest.add_dir(where))
                        return
                    except _SourceError:
                        break
        self.totals.vanished += 1

    def _other(
        self, rel: bytes, entry: os.DirEntry[bytes], line: bytes | None, lines: list[bytes]
    ) -> None:
        if line is not None:
            checksum, size_text, mtime_text, _ = line.split(b" ", 3)
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                self.totals.vanished += 1
                return
            path = rel + b"/" + entry.name if rel else entry.name
            if (
                stat.st_size == int(size_text)
                and stat.st_mtime_ns == int(mtime_text)
                and path not in self.recopy
                and self._link(path, path)
            ):
                lines.append(line)
                self._count(stat.st_size, linked=True)
                return
        try:
            self._copy(rel, entry.name, lines)
        except _SourceError as failure:
            if failure.error.errno == errno.ENOENT:
                self.totals.vanished += 1
            else:
                self._unreadable(rel, entry.name, failure.error)

    def _link(self, previous: bytes, current: bytes) -> bool:
        if not self.prev_root:
            return False
        try:
            os.link(self.prev_root + b"/" + previous, self.dst + b"/" + current)
        except FileNotFoundError:
            return False  # missing from the previous snapshot: copy it afresh
        except OSError as error:
            if error.errno == errno.EMLINK:
                return False
            raise DestinationError(error, self.dst + b"/" + current) from None
        return True

    def _copy(self, rel: bytes, name: bytes, lines: list[bytes]) -> None:
        """Copy and hash one live file (one read pass); keeps its mode and times."""
        source = self.src + b"/" + rel + b"/" + name if rel else self.src + b"/" + name
        target = self.dst + b"/" + rel + b"/" + name if rel else self.dst + b"/" + name
        try:
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
        lines.append(file_line(digest.hexdigest().encode("ascii"), size, stat.st_mtime_ns, name))
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
        if self._tick >= 1000 and self.progress is not None:
            self._tick = 0
            self.progress(totals, b"")

    def _unreadable(self, rel: bytes, name: bytes, error: OSError) -> None:
        path = os.fsdecode(rel + b"/" + name)
        self.totals.unreadable.append(f"{path}: {error.strerror}")


def take_snapshot(
    source: Path,
    target: Path,
    previous: Manifest | None = None,
    previous_root: Path | None = None,
    *,
    recopy: frozenset[bytes] = frozenset(),
    progress: Progress | None = None,
) -> tuple[Manifest, Totals]:
    return Snapshotter(
        source, target, previous, previous_root, recopy=recopy, progress=progress
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
