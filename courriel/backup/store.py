"""The backup directory: snapshots, database dumps, locks and leftovers.

```
<directory>/
  daily.0 ... daily.6, weekly.0 ... weekly.3     complete snapshots (newest first)
      info.json        when, how much, which mailboxes, which database dump
      mail/            the mail root as it was
  manifests/           <snapshot id>.gz: files, sizes, checksums (courriel.backup.manifest)
  database/            courriel-YYYYMMDD-HHMMSS.{sqlite3,pgdump} + .json (checksum)
  .incoming            the snapshot being built (a leftover is removed by the next run)
  .rotating.*          a snapshot between two names while the set is renumbered
  .trash.*             a snapshot being deleted
  .lock                held by a running backup (flock: released if the process dies)
  .readers             shared by restores and verifications, exclusive while renaming
  .recopy              files `verify` found damaged: the next run copies them afresh
```

A snapshot becomes visible under its `daily.N` name only once complete (its tree,
manifest and info are written and flushed, then the directory is renamed).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from courriel.backup.policy import BackupPolicy
from courriel.errors import ConflictError, NotFoundError, ServiceUnavailableError
from courriel.i18n import gettext as _

INFO = "info.json"
TREE = "mail"
INCOMING = ".incoming"
RECOPY = ".recopy"  # files verify found damaged: the next run copies them afresh
_NAME_RE = re.compile(r"^(daily|weekly)\.(\d+)$")


@dataclass
class Snapshot:
    name: str  # daily.0, weekly.2 (or .rotating.* after an interrupted rotation)
    path: Path
    info: dict[str, Any]

    @property
    def taken_at(self) -> datetime:
        return datetime.fromisoformat(self.info["taken_at"])

    @property
    def id(self) -> str:
        """Stable across rotations (a name like daily.0 moves every day)."""
        return self.info["id"]

    @property
    def tree(self) -> Path:
        return self.path / TREE

    @property
    def kind(self) -> str:
        return self.name.split(".")[0] if _NAME_RE.match(self.name) else "daily"


def ensure_directory(policy: BackupPolicy) -> Path:
    """The backup directory, created only when it is the default one."""
    directory = policy.directory
    if directory.is_dir():
        return directory
    if policy.explicit_directory:
        raise ServiceUnavailableError(
            _(
                "The backup directory %(directory)s does not exist: is the backup disk "
                "mounted? Create the directory if this is its first use, or set [backup] "
                "directory."
            )
            % {"directory": directory}
        )
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise ServiceUnavailableError(
            _("Cannot create the backup directory %(directory)s: %(error)s.")
            % {"directory": directory, "error": error.strerror}
        ) from None
    return directory


def read_info(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / INFO).read_text("utf-8"))
    except (OSError, ValueError):
        return None


def snapshots(directory: Path) -> list[Snapshot]:
    """Every complete snapshot, newest first (dailies, then weeklies)."""
    found: list[Snapshot] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        if not (_NAME_RE.match(name) or name.startswith(".rotating.")):
            continue
        info = read_info(directory / name)
        if info is not None and "taken_at" in info:
            found.append(Snapshot(name, directory / name, info))
    return sorted(found, key=_order)


def _order(snapshot: Snapshot) -> tuple[int, float]:
    match = _NAME_RE.match(snapshot.name)
    weekly = bool(match and match.group(1) == "weekly")
    return (1 if weekly else 0, -snapshot.taken_at.timestamp())


def find(directory: Path, ref: str | None) -> Snapshot:
    """A snapshot by name (daily.0), id or date (2024-05-01); None: the newest."""
    every = snapshots(directory)
    if not every:
        raise NotFoundError(
            _("There is no snapshot in %(directory)s yet: run `courriel backup run` first.")
            % {"directory": directory}
        )
    if not ref:
        return max(every, key=lambda s: s.taken_at)
    for snapshot in every:
        if ref in {snapshot.name, snapshot.id}:
            return snapshot
    by_date = [s for s in every if s.taken_at.date().isoformat() == ref]
    if by_date:
        return max(by_date, key=lambda s: s.taken_at)
    names = ", ".join(s.name for s in every)
    raise NotFoundError(
        _("No snapshot %(ref)s. Snapshots: %(names)s (`courriel backup list`).")
        % {"ref": repr(ref), "names": names}
    )


def write_info(path: Path, info: dict[str, Any]) -> None:
    tmp = path / (INFO + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path / INFO)


def set_aside(path: Path) -> Path:
    """First step of deleting a snapshot: an atomic rename, so that a half-deleted
    snapshot is never mistaken for a complete one; `.trash.*` leftovers are removed
    by the next run."""
    trash = path.with_name(f".trash.{time.time_ns()}")
    os.rename(path, trash)
    return trash


def clean_leftovers(directory: Path) -> list[str]:
    """Remove what an interrupted run left: a partial snapshot, half-deleted ones."""
    removed = []
    for name in os.listdir(directory):
        if name == INCOMING or name.startswith((".trash.", INCOMING + ".")):
            shutil.rmtree(directory / name, ignore_errors=True)
            removed.append(name)
    return removed


# --- locks ----------------------------------------------------------------------------


@contextlib.contextmanager
def run_lock(directory: Path) -> Iterator[None]:
    """One backup at a time; the kernel releases the lock if the process dies."""
    path = directory / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            raise ConflictError(
                f"Another backup is running ({holder or 'unknown process'}): "
                "wait for it to finish, then try again."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {datetime.now():%Y-%m-%d %H:%M:%S}".encode(), 0)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def readers_lock(directory: Path, *, exclusive: bool = False) -> Iterator[None]:
    """Restores and verifications read a snapshot under a shared lock; the renaming of
    snapshots waits for them, so a snapshot never changes name under a reader."""
    fd = os.open(directory / ".readers", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)
