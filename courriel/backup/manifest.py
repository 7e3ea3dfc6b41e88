"""Manifests: every directory and file of a snapshot's mail tree with its size,
modification time and checksum (xxh3-128, the hash rsync uses), so that `verify` finds
damaged or missing files.

A snapshot's manifest is stored as the difference from the previous snapshot's: the
files copied (`F`), the ones linked under another name (`L`, a flag change) and the
ones gone (`X`); every directory of the snapshot is listed (`D`). Like the snapshot
itself, a manifest then costs space only for what changed. Every `REBASE` snapshots a
complete one is written, so reading one replays a bounded chain. Manifests live in
`<backup>/manifests/<snapshot id>.gz` and go when no kept snapshot needs them.

Lines are kept as bytes and grouped by directory: reading the manifest of 100,000
messages costs a split per directory, not a parse per file.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"courriel-backup-manifest 2 xxh3-128"
SUBDIR = "manifests"
REBASE = 30  # a complete manifest at least every 30 snapshots


class ManifestError(ValueError):
    pass


def escape(name: bytes) -> bytes:
    if b"\\" in name or b"\n" in name or b"\t" in name:
        return name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\t", b"\\t")
    return name


def unescape(name: bytes) -> bytes:
    if b"\\" not in name:
        return name
    out = bytearray()
    i = 0
    while i < len(name):
        char = name[i : i + 1]
        if char == b"\\" and i + 1 < len(name):
            following = name[i + 1 : i + 2]
            out += {b"n": b"\n", b"t": b"\t"}.get(following, following)
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
    """`<checksum> <size> <mtime_ns> <name>`, one file of a complete manifest."""
    return b"%s %d %d %s" % (checksum, size, mtime_ns, escape(name))


def split_line(line: bytes) -> tuple[bytes, int, int, bytes]:
    checksum, size, mtime, name = line.split(b" ", 3)
    return checksum, int(size), int(mtime), unescape(name)


class Manifest:
    """A complete manifest: directories (relative, b"" for the top) -> file lines."""

    def __init__(self, dirs: dict[bytes, list[bytes]] | None = None) -> None:
        self.dirs: dict[bytes, list[bytes]] = dirs if dirs is not None else {}

    def entries(self) -> Iterator[Entry]:
        for rel, lines in self.dirs.items():
            prefix = rel + b"/" if rel else b""
            for line in lines:
                checksum, size, mtime, name = split_line(line)
                yield Entry(prefix + name, size, mtime, checksum.decode("ascii"))

    def directories_under(self, rel: bytes) -> list[bytes]:
        return [d for d in self.dirs if rel == b"" or d == rel or d.startswith(rel + b"/")]

    @property
    def file_count(self) -> int:
        return sum(len(lines) for lines in self.dirs.values())


class Delta:
    """What a snapshot changed: directories -> tagged lines (`F`, `L`, `X`)."""

    def __init__(self) -> None:
        self.dirs: dict[bytes, list[bytes]] = {}

    def add_dir(self, rel: bytes) -> list[bytes]:
        lines = self.dirs.get(rel)
        if lines is None:
            lines = self.dirs[rel] = []
        return lines

    @staticmethod
    def copied(checksum: bytes, size: int, mtime_ns: int, name: bytes) -> bytes:
        return b"F " + file_line(checksum, size, mtime_ns, name)

    @staticmethod
    def linked(previous: bytes, name: bytes) -> bytes:
        return b"L " + escape(previous) + b"\t" + escape(name)

    @staticmethod
    def gone(name: bytes) -> bytes:
        return b"X " + escape(name)


def as_delta(complete: Manifest) -> Delta:
    """A complete manifest written as a delta from nothing (the start of a chain)."""
    delta = Delta()
    delta.dirs = {rel: [b"F " + line for line in lines] for rel, lines in complete.dirs.items()}
    return delta


def apply(base: Manifest, delta: Delta) -> Manifest:
    """The complete manifest of a snapshot from its predecessor's and its delta."""
    indexes: dict[bytes, dict[bytes, bytes]] = {}

    def base_line(path: bytes) -> bytes:
        folder, _, name = path.rpartition(b"/")
        index = indexes.get(folder)
        if index is None:
            index = indexes[folder] = {
                unescape(line.split(b" ", 3)[3]): line for line in base.dirs.get(folder, ())
            }
        try:
            return index[name]
        except KeyError:
            raise ManifestError(f"manifest chain broken at {os.fsdecode(path)}") from None

    dirs: dict[bytes, list[bytes]] = {}
    for rel, lines in delta.dirs.items():
        removed = {unescape(line[2:]) for line in lines if line.startswith(b"X ")}
        current = [
            line
            for line in base.dirs.get(rel, ())
            if not removed or unescape(line.split(b" ", 3)[3]) not in removed
        ]
        for line in lines:
            if line.startswith(b"F "):
                current.append(line[2:])
            elif line.startswith(b"L "):
                previous, _, name = line[2:].partition(b"\t")
                checksum, size, mtime, _ = base_line(unescape(previous)).split(b" ", 3)
                current.append(b"%s %s %s %s" % (checksum, size, mtime, name))
        dirs[rel] = current
    return Manifest(dirs)


# --- files ----------------------------------------------------------------------------


def path_of(directory: Path, snapshot_id: str) -> Path:
    return directory / SUBDIR / f"{snapshot_id}.gz"


def write(directory: Path, snapshot_id: str, base: str | None, depth: int, delta: Delta) -> None:
    """Write atomically (tmp, fsync, rename): a manifest is either whole or absent."""
    folder = directory / SUBDIR
    folder.mkdir(mode=0o700, exist_ok=True)
    path = path_of(directory, snapshot_id)
    tmp = path.with_name(path.name + ".tmp")
    header = b"%s id=%s base=%s depth=%d\n" % (
        MAGIC,
        snapshot_id.encode(),
        (base or "-").encode(),
        depth,
    )
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as out:
            out.write(header)
            for rel, lines in delta.dirs.items():
                out.write(b"D " + escape(rel) + b"\n")
                if lines:
                    out.write(b"\n".join(lines) + b"\n")
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)


def _read(directory: Path, snapshot_id: str) -> tuple[dict[str, str], Delta]:
    path = path_of(directory, snapshot_id)
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise ManifestError(f"cannot read the manifest {path}: {error}") from None
    head, _, body = data.partition(b"\n")
    if not head.startswith(MAGIC):
        raise ManifestError(f"{path} is not a Courriel backup manifest")
    fields = dict(part.split("=", 1) for part in head[len(MAGIC) :].decode().split())
    delta = Delta()
    # Every line starts with a tag; escaped names cannot hold a newline.
    for block in (b"\n" + body).split(b"\nD ")[1:]:
        rel, _, rest = block.partition(b"\n")
        delta.dirs[unescape(rel)] = [line for line in rest.split(b"\n") if line]
    return fields, delta


def chain(directory: Path, snapshot_id: str) -> list[str]:
    """Ids from the complete manifest to this one; ManifestError if a link is missing."""
    ids = [snapshot_id]
    while True:
        path = path_of(directory, ids[-1])
        try:
            with gzip.open(path, "rb") as handle:
                head = handle.readline()
        except (OSError, EOFError) as error:
            raise ManifestError(f"cannot read the manifest {path}: {error}") from None
        if not head.startswith(MAGIC):
            raise ManifestError(f"{path} is not a Courriel backup manifest")
        fields = dict(part.split("=", 1) for part in head[len(MAGIC) :].decode().split())
        if fields.get("base", "-") == "-":
            return ids[::-1]
        ids.append(fields["base"])
        if len(ids) > 10 * REBASE:
            raise ManifestError(f"manifest chain of {snapshot_id} does not end")


def load(directory: Path, snapshot_id: str) -> Manifest:
    """The complete manifest of a snapshot (its chain replayed)."""
    manifest = Manifest()
    for step in chain(directory, snapshot_id):
        manifest = apply(manifest, _read(directory, step)[1])
    return manifest


def depth(directory: Path, snapshot_id: str) -> int:
    return len(chain(directory, snapshot_id)) - 1


def prune(directory: Path, keep: list[str]) -> None:
    """Delete the manifests no kept snapshot needs."""
    needed: set[str] = set()
    for snapshot_id in keep:
        try:
            needed.update(chain(directory, snapshot_id))
        except ManifestError:
            needed.add(snapshot_id)
    try:
        names = os.listdir(directory / SUBDIR)
    except OSError:
        return
    for name in names:
        if name.endswith(".gz") and name[:-3] not in needed:
            os.unlink(directory / SUBDIR / name)
