"""The per-snapshot manifest: every directory and file of the snapshot's mail tree with
its size, modification time and checksum (xxh3-128, the hash rsync uses).

`verify` compares the tree with it to find damaged or missing files, and the next
snapshot reads it to link unchanged messages without reading them again. Lines are
kept as bytes and grouped by directory, so that reading the manifest of 100,000
messages costs a split per directory, not a parse per file.

Format (gzip): a header line, then `D <dir>` followed by that directory's files,
`F <checksum> <size> <mtime_ns> <name>`; `\\` and newlines in names are escaped.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HEADER = b"courriel-backup-manifest 1 xxh3-128\n"
NAME = "manifest.gz"


def escape(name: bytes) -> bytes:
    if b"\\" in name or b"\n" in name:
        return name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")
    return name


def unescape(name: bytes) -> bytes:
    if b"\\" not in name:
        return name
    out = bytearray()
    i = 0
    while i < len(name):
        char = name[i : i + 1]
        if char == b"\\" and i + 1 < len(name):
            out += b"\n" if name[i + 1 : i + 2] == b"n" else name[i + 1 : i + 2]
            i += 2
        else:
            out += char
            i += 1
    return bytes(out)


@dataclass(frozen=True)
class Entry:
    """One file of a snapshot, `path` relative to the snapshot's mail tree."""

    path: bytes
    size: int
    mtime_ns: int
    checksum: str

    @property
    def name(self) -> bytes:
        return self.path.rpartition(b"/")[2]


def file_line(checksum: bytes, size: int, mtime_ns: int, name: bytes) -> bytes:
    """The part of an F line after "F " (without the newline)."""
    return b"%s %d %d %s" % (checksum, size, mtime_ns, escape(name))


def split_line(line: bytes) -> tuple[bytes, int, int, bytes]:
    checksum, size, mtime, name = line.split(b" ", 3)
    return checksum, int(size), int(mtime), unescape(name)


class Manifest:
    """Directories (relative paths, b"" for the top) mapped to their raw file lines."""

    def __init__(self, dirs: dict[bytes, list[bytes]] | None = None) -> None:
        self.dirs: dict[bytes, list[bytes]] = dirs if dirs is not None else {}

    def add_dir(self, rel: bytes) -> list[bytes]:
        lines = self.dirs.get(rel)
        if lines is None:
            lines = self.dirs[rel] = []
        return lines

    def entries(self) -> Iterator[Entry]:
        for rel, lines in self.dirs.items():
            prefix = rel + b"/" if rel else b""
            for line in lines:
                checksum, size, mtime, name = split_line(line)
                yield Entry(prefix + name, size, mtime, checksum.decode("ascii"))

    def entries_under(self, rel: bytes) -> Iterator[Entry]:
        """Entries of `rel` and every directory below it."""
        for entry in self.entries():
            if rel == b"" or entry.path.startswith(rel + b"/"):
                yield entry

    def directories_under(self, rel: bytes) -> list[bytes]:
        return [d for d in self.dirs if rel == b"" or d == rel or d.startswith(rel + b"/")]

    @property
    def file_count(self) -> int:
        return sum(len(lines) for lines in self.dirs.values())

    def write(self, path: Path) -> None:
        """Write atomically (tmp, fsync, rename): a manifest is either whole or absent."""
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as out:
                out.write(HEADER)
                for rel, lines in self.dirs.items():
                    out.write(b"D " + escape(rel) + b"\n")
                    if lines:
                        out.write(b"F " + b"\nF ".join(lines) + b"\n")
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)


class ManifestError(ValueError):
    pass


def read(path: Path) -> Manifest:
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise ManifestError(f"cannot read {path}: {error}") from None
    if not data.startswith(HEADER):
        raise ManifestError(f"{path} is not a Courriel backup manifest")
    dirs: dict[bytes, list[bytes]] = {}
    # Every line starts with "D " or "F "; escaped names cannot hold a newline.
    for block in (b"\n" + data[len(HEADER) :]).split(b"\nD ")[1:]:
        head, _, rest = block.partition(b"\n")
        dirs[unescape(head)] = [line[2:] for line in rest.split(b"\n") if line]
    return Manifest(dirs)
