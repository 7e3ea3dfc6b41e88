"""A domain's Maildirs as files: listing them, sending them, and bringing a copy up
to date with another node's, the way `rsync -a` would but knowing Maildirs.

Everything is copied as it is: message files under their names (flags included),
`dovecot-uidlist`, `dovecot-keywords`, `maildirsize`, subscriptions, our modseq
file, with their modification times (a message's INTERNALDATE) and modes. So UIDs,
UIDVALIDITY, flags, keywords and quota usage are the same on the new node and a
client that synced before the move downloads nothing again.

A message whose flags changed on the source was renamed there (`new/x` ->
`cur/x:2,S`): the copy renames its own file instead of fetching the bytes again.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

DIRECTORY = -1  # size of a manifest entry that is a directory
SKIPPED = {"tmp"}  # deliveries in progress: never copied
SKIPPED_FILES = {"dovecot-uidlist.lock"}
FRAME = struct.Struct(">HqqI")  # path length, size (-1: gone), mtime_ns, mode
CHUNK = 1024 * 1024
SMALL = 256 * 1024  # a file up to this size travels as one piece of the stream


@dataclass(frozen=True)
class Item:
    path: str  # relative to the mail root, '/'-separated
    size: int  # DIRECTORY for a directory
    mtime_ns: int
    mode: int = 0o600

    def as_list(self) -> list[object]:
        return [self.path, self.size, self.mtime_ns, self.mode]

    @classmethod
    def of(cls, row: list[object]) -> Item:
        path, size, mtime, mode = row
        return cls(str(path), int(size), int(mtime), int(mode))  # type: ignore[arg-type]


def safe_relative(path: str) -> str:
    """A relative path inside the mail root, or ValueError (never `..`, never absolute)."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in {"", ".", ".."} for p in parts):
        raise ValueError(f"not a path inside the mail root: {path!r}")
    return path


def listing(root: Path, directories: Iterable[str]) -> list[Item]:
    """Every file and directory under `root/<directory>` (tmp/ contents excepted)."""
    found: list[Item] = []

    def walk(relative: str) -> None:
        try:
            entries = list(os.scandir(root / relative))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            child = f"{relative}/{entry.name}"
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # renamed or expunged meanwhile: the next pass sees it
            if entry.is_dir(follow_symlinks=False):
                found.append(Item(child, DIRECTORY, info.st_mtime_ns, info.st_mode & 0o7777))
                if entry.name not in SKIPPED:
                    walk(child)
            elif entry.is_file(follow_symlinks=False) and entry.name not in SKIPPED_FILES:
                found.append(Item(child, info.st_size, info.st_mtime_ns, info.st_mode & 0o7777))

    for directory in directories:
        base = safe_relative(directory)
        if (root / base).is_dir():
            found.append(Item(base, DIRECTORY, 0, 0o700))
            walk(base)
    return found


def send_files(root: Path, paths: Iterable[str]) -> Iterator[bytes]:
    """The files asked for, framed: a header (path, size or -1 when gone, mtime,
    mode), then the bytes. A file renamed or removed since it was listed is `gone`."""
    for path in paths:
        relative = safe_relative(path).encode()
        try:
            handle = open(root / path, "rb")  # noqa: SIM115 - closed below, in the generator
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            yield FRAME.pack(len(relative), -1, 0, 0) + relative
            continue
        with handle:
            info = os.fstat(handle.fileno())
            head = FRAME.pack(len(relative), info.st_size, info.st_mtime_ns, info.st_mode & 0o7777)
            if info.st_size <= SMALL:  # most messages: one piece with its header
                data = handle.read(info.st_size)
                yield head + relative + data + b"\0" * (info.st_size - len(data))
                continue
            yield head + relative
            left = info.st_size
            while left > 0:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:  # cut short under us: pad, the next pass fetches it again
                    chunk = b"\0" * left
                left -= len(chunk)
                yield chunk


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise ConnectionError("file stream cut short")
    return data


def receive_files(stream: BinaryIO, staging: Path, expected: set[str]) -> tuple[int, int]:
    """Write the files of a `send_files` stream under `staging`; (files, bytes)."""
    files = size_total = 0
    while True:
        head = stream.read(FRAME.size)
        if not head:
            return files, size_total
        if len(head) != FRAME.size:
            raise ConnectionError("file stream cut short")
        length, size, mtime_ns, mode = FRAME.unpack(head)
        path = _read_exactly(stream, length).decode()
        if path not in expected:
            raise ConnectionError(f"unexpected file {path!r} in the stream")
        if size < 0:
            continue
        target = staging / path
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.moving")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            left = size
            while left > 0:
                chunk = stream.read(min(CHUNK, left))
                if not chunk:
                    raise ConnectionError("file stream cut short")
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                left -= len(chunk)
            os.fchmod(fd, mode or 0o600)
        finally:
            os.close(fd)
        os.utime(temporary, ns=(mtime_ns, mtime_ns))
        os.replace(temporary, target)
        files += 1
        size_total += size


def message_key(path: str) -> tuple[str, str] | None:
    """(folder directory, base name) of a message file (`.../cur/NAME:2,FLAGS`)."""
    head, _, name = path.rpartition("/")
    folder, _, sub = head.rpartition("/")
    if sub not in {"cur", "new"}:
        return None
    return folder, name.partition(":2,")[0]


@dataclass
class Plan:
    fetch: list[Item]
    renames: list[tuple[str, Item]]  # (local path, remote item)
    removals: list[str]
    directories: list[Item]

    @property
    def changes(self) -> int:
        return len(self.fetch) + len(self.renames) + len(self.removals)


def plan(remote: list[Item], staging: Path, directories: Iterable[str]) -> Plan:
    """What makes `staging` equal to `remote`."""
    local = {item.path: item for item in listing(staging, directories)}
    by_key: dict[tuple[str, str], Item] = {}
    for item in local.values():
        key = message_key(item.path) if item.size != DIRECTORY else None
        if key is not None:
            by_key[key] = item
    wanted = {item.path for item in remote}
    result = Plan([], [], [], [])
    claimed: set[str] = set()
    for item in remote:
        if item.size == DIRECTORY:
            result.directories.append(item)
            continue
        mine = local.get(item.path)
        if mine is not None and mine.size == item.size and mine.mtime_ns == item.mtime_ns:
            claimed.add(item.path)
            continue
        key = message_key(item.path)
        twin = by_key.get(key) if key is not None else None
        if (
            twin is not None
            and twin.path not in wanted
            and twin.path not in claimed
            and twin.size == item.size
        ):
            claimed.add(twin.path)
            result.renames.append((twin.path, item))
            continue
        result.fetch.append(item)
    for path, item in local.items():
        if path not in wanted and path not in claimed and item.size != DIRECTORY:
            result.removals.append(path)
    return result


def apply_local(staging: Path, work: Plan) -> None:
    """Directories, renames and removals (fetches are the caller's)."""
    for item in work.directories:
        path = staging / item.path
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old, item in work.renames:
        target = staging / item.path
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(staging / old, target)
        os.utime(target, ns=(item.mtime_ns, item.mtime_ns))
    for path in work.removals:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging / path)


def batches(
    items: list[Item], max_files: int = 2000, max_bytes: int = 32 << 20
) -> Iterator[list[Item]]:
    batch: list[Item] = []
    size = 0
    for item in items:
        batch.append(item)
        size += item.size
        if len(batch) >= max_files or size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def remove_extra_directories(staging: Path, remote: list[Item], directories: Iterable[str]) -> None:
    """Folders deleted on the source since the last pass (deepest first)."""
    wanted = {item.path for item in remote if item.size == DIRECTORY}
    extra = [
        item.path
        for item in listing(staging, directories)
        if item.size == DIRECTORY and item.path not in wanted
    ]
    for path in sorted(extra, key=len, reverse=True):
        with contextlib.suppress(OSError):
            for leftover in (staging / path).glob("*"):
                if leftover.is_file():
                    leftover.unlink()
            (staging / path).rmdir()


Fetcher = Callable[[list[Item]], tuple[int, int]]
