"""`courriel backup verify`: restore a snapshot into a scratch place and check it.

The manual tells customers to test a restore at least once; this does it for every
message: each file is copied out of the snapshot the way a restore reads it, and its
size and checksum are compared with the manifest written when it was taken. The
database dump of the snapshot is restored into a scratch database and read back.

Damaged files are listed in `.recopy`, so that the next backup copies them afresh
from the live mailbox instead of linking to the damaged copy again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from courriel.backup import database, manifest, store
from courriel.backup.policy import BackupPolicy, load_policy
from courriel.errors import ValidationError


@dataclass
class VerifyReport:
    snapshot: str
    id: str
    taken_at: str
    files: int = 0
    bytes: int = 0
    damaged: list[dict[str, str]] = field(default_factory=list)  # path, problem
    unexpected: list[str] = field(default_factory=list)
    database: str = ""
    database_ok: bool = True

    @property
    def ok(self) -> bool:
        return not self.damaged and self.database_ok

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "ok": self.ok}


def verify(ref: str | None = None, policy: BackupPolicy | None = None) -> VerifyReport:
    policy = policy or load_policy()
    directory = policy.directory
    with store.readers_lock(store.ensure_directory(policy)):
        snapshot = store.find(directory, ref)
        report = VerifyReport(snapshot.name, snapshot.id, snapshot.info["taken_at"])
        with tempfile.TemporaryDirectory(prefix="courriel-verify-") as scratch:
            _check_tree(directory, snapshot, report, Path(scratch))
            _check_database(directory, snapshot, report, Path(scratch))
    if report.damaged:
        _remember_damaged(directory, report.damaged)
    return report


def _check_tree(
    directory: Path, snapshot: store.Snapshot, report: VerifyReport, scratch: Path
) -> None:
    try:
        listed = manifest.load(directory, snapshot.id)
    except manifest.ManifestError as error:
        report.damaged.append({"path": "manifest", "problem": str(error)})
        return
    tree = os.fsencode(snapshot.tree)
    out = os.fsencode(scratch / "mail")
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    for rel, lines in listed.dirs.items():
        source_dir = tree + b"/" + rel if rel else tree
        if not os.path.isdir(source_dir):
            report.damaged.append({"path": os.fsdecode(rel) + "/", "problem": "directory missing"})
            continue
        target_dir = out + b"/" + rel if rel else out
        os.makedirs(target_dir, exist_ok=True)
        expected: set[bytes] = set()
        for line in lines:
            digest, size, _, name = manifest.split_line(line)
            expected.add(name)
            path = os.fsdecode(rel + b"/" + name if rel else name)
            problem = _restore_one(
                source_dir + b"/" + name,
                target_dir + b"/" + name,
                buffer,
                view,
                size,
                digest.decode("ascii"),
            )
            report.files += 1
            report.bytes += size
            if problem:
                report.damaged.append({"path": path, "problem": problem})
        with os.scandir(source_dir) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False) and entry.name not in expected:
                    report.unexpected.append(os.fsdecode(rel + b"/" + entry.name))
        shutil.rmtree(target_dir, ignore_errors=True)  # checked: free the scratch space


def _restore_one(
    source: bytes, target: bytes, buffer: bytearray, view: memoryview, size: int, digest: str
) -> str | None:
    """Copy one file out of the snapshot, hashing what was read; what is wrong, if any."""
    hasher = xxhash.xxh3_128()
    total = 0
    try:
        with open(source, "rb", buffering=0) as src, open(target, "wb", buffering=0) as dst:
            while count := src.readinto(buffer):
                hasher.update(view[:count])
                dst.write(view[:count])
                total += count
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        return f"unreadable ({error.strerror})"
    if total != size:
        return f"size {total} instead of {size}"
    if hasher.hexdigest() != digest:
        return "content differs from when it was backed up (checksum)"
    return None


def _check_database(
    directory: Path, snapshot: store.Snapshot, report: VerifyReport, scratch: Path
) -> None:
    name = snapshot.info.get("database_dump")
    if not name:
        report.database = "no database dump was taken with this snapshot"
        report.database_ok = False
        return
    try:
        dump = database.find(directory, name)
    except Exception:
        report.database = f"{name} is no longer kept (older than [backup] database_days)"
        return
    try:
        report.database = f"{name}: {database.check(dump, scratch)}"
    except ValidationError as error:
        report.database = error.message
        report.database_ok = False


def _remember_damaged(directory: Path, damaged: list[dict[str, str]]) -> None:
    with open(directory / store.RECOPY, "ab") as handle:
        for item in damaged:
            if item["path"] != "manifest" and not item["path"].endswith("/"):
                handle.write(os.fsencode(item["path"]) + b"\n")
