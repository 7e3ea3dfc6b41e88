"""`courriel backup run`: one snapshot of the mail and a dump of the database, rotated.

Order of work, chosen so that an interruption at any point leaves the earlier
snapshots whole: the new snapshot is built in `.incoming` (linking to the newest
complete one), its manifest and info are written and flushed to disk, and only then
are snapshots renamed. A leftover `.incoming` is simply removed by the next run.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from courriel.backup import database, manifest, rotation, status, store
from courriel.backup.notify import report_failure
from courriel.backup.policy import BackupPolicy, load_policy, local_now
from courriel.backup.snapshot import (
    DestinationError,
    Interrupted,
    Progress,
    Totals,
    WorkerLost,
    flush_filesystem,
    take_snapshot,
)
from courriel.errors import CourrielError, ServiceUnavailableError
from courriel.units import format_size

log = logging.getLogger("courriel.backup")
_GONE = {errno.ENOENT, errno.EIO, errno.ENODEV, errno.ENXIO, errno.ESTALE, errno.ENOTDIR}
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class BackupError(ServiceUnavailableError):
    """The backup did not complete (or completed with problems): say what to do."""


@dataclass
class Result:
    snapshot: str
    id: str
    files: int
    bytes: int
    bytes_copied: int
    bytes_linked: int
    files_copied: int
    files_linked: int
    mailboxes: int
    vanished: int
    duration: float
    database_dump: str | None
    problems: list[str]

    @property
    def summary(self) -> str:
        line = (
            f"backup {self.snapshot}: {self.files:,} files, {format_size(self.bytes_copied)} "
            f"copied, {format_size(self.bytes_linked)} linked, {self.duration:.1f} s"
        )
        if self.vanished:
            line += f" ({self.vanished} deleted or renamed during the run)"
        return line

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def destination_failure(
    error: OSError | DestinationError, directory: os.PathLike[str]
) -> BackupError:
    code = error.errno
    reason = error.strerror or str(error)
    if code in _FULL:
        return BackupError(
            f"The backup disk is full ({reason}) in {directory}: this snapshot was not made "
            "and the earlier snapshots are intact. Free space there or keep fewer snapshots "
            "([backup] daily, weekly), then run `courriel backup run` again."
        )
    if code in _GONE or not os.path.isdir(directory):
        return BackupError(
            f"The backup directory {directory} became unavailable during the run ({reason}): "
            "is the backup disk still mounted? Earlier snapshots were not touched; run "
            "`courriel backup run` again once it is back."
        )
    return BackupError(
        f"Cannot write the backup in {directory} ({reason}); earlier snapshots are intact."
    )


def _read_recopy(directory: os.PathLike[str]) -> frozenset[bytes]:
    try:
        with open(os.path.join(directory, store.RECOPY), "rb") as handle:
            return frozenset(line.rstrip(b"\n") for line in handle if line.strip())
    except OSError:
        return frozenset()


def run_backup(
    policy: BackupPolicy | None = None,
    *,
    progress: Progress | None = None,
    trigger: str = "cli",
    interrupt: threading.Event | None = None,
) -> Result:
    """Take one snapshot; report a failure (status file, log, audit) and raise it."""
    policy = policy or load_policy()
    try:
        result = _run(policy, progress, interrupt)
    except CourrielError as error:
        report_failure(error.message, trigger=trigger)
        raise
    if result.problems:
        message = f"{result.snapshot} was made, but: " + "; ".join(result.problems)
        report_failure(message, trigger=trigger, **result.as_dict())
        raise BackupError(message)
    log.info("%s", result.summary)
    status.write(True, result.summary, trigger=trigger, **result.as_dict())
    return result


def _dump_here(now: datetime) -> bool:
    """One database dump a day for the platform when several hosting servers share it
    (courriel.cluster.once); the one whose backup runs first takes it."""
    from django.db import DatabaseError

    from courriel.cluster.once import claim

    try:
        return claim("database-dump", f"{now:%Y-%m-%d}")
    except DatabaseError as error:
        raise database.DumpError(f"the database is unavailable: {error}") from None


def _run(
    policy: BackupPolicy, progress: Progress | None, interrupt: threading.Event | None
) -> Result:
    started = time.monotonic()
    now = local_now()  # [general] time_zone, like the schedule
    directory = store.ensure_directory(policy)
    if not policy.mail_root.is_dir():
        raise BackupError(f"The mail root {policy.mail_root} does not exist: check [mail] root.")
    with store.run_lock(directory):
        store.clean_leftovers(directory)
        kept = store.snapshots(directory)
        manifest.prune(directory, [s.id for s in kept])  # those of interrupted runs
        previous = max(kept, key=lambda s: s.taken_at, default=None)
        previous_depth = 0
        if previous is not None:
            try:
                previous_depth = manifest.depth(directory, previous.id)
            except manifest.ManifestError as error:
                log.warning("%s: copying everything again", error)
                previous = None
        snapshot_id = f"{now:%Y%m%d-%H%M%S-%f}"
        problems: list[str] = []
        incoming = directory / store.INCOMING
        try:
            dump_name = None
            try:
                # One dump a day for the platform when several servers share it.
                if _dump_here(now):
                    dump_name = database.dump(directory, now).name
            except database.DumpError as error:
                problems.append(f"the database dump failed: {error}")
            os.mkdir(incoming, 0o700)
            delta, totals = take_snapshot(
                policy.mail_root,
                incoming / store.TREE,
                previous.tree if previous else None,
                recopy=_read_recopy(directory),
                progress=progress,
                workers=policy.workers,
                interrupt=interrupt,
            )
            if previous is None:
                manifest.write(directory, snapshot_id, None, 0, delta)
            elif previous_depth + 1 >= manifest.REBASE:
                complete = manifest.apply(manifest.load(directory, previous.id), delta)
                manifest.write(directory, snapshot_id, None, 0, manifest.as_delta(complete))
            else:
                manifest.write(directory, snapshot_id, previous.id, previous_depth + 1, delta)
            info = _info(snapshot_id, now, totals, dump_name, time.monotonic() - started)
            store.write_info(incoming, info)
            if policy.sync:
                flush_filesystem(incoming)
            new = store.Snapshot(store.INCOMING, incoming, info)
            with store.readers_lock(directory, exclusive=True):
                plan = rotation.plan(
                    store.snapshots(directory),
                    new,
                    daily=policy.daily,
                    weekly=policy.weekly,
                    weekly_every=policy.weekly_every,
                )
                trash = rotation.apply(directory, plan)
        except (DestinationError, OSError) as error:
            _abandon(directory, incoming, dump_name)
            raise destination_failure(error, directory) from None
        except Interrupted:
            _abandon(directory, incoming, dump_name)
            raise BackupError(
                "The backup was interrupted (the server is stopping); earlier snapshots are "
                "intact and the next run starts afresh."
            ) from None
        except WorkerLost:
            _abandon(directory, incoming, dump_name)
            raise BackupError(
                "A backup worker process was killed (out of memory? see the system log); "
                "earlier snapshots are intact. Run the backup again, or set [backup] "
                "workers = 1."
            ) from None
        for path in trash:
            shutil.rmtree(path, ignore_errors=True)
        manifest.prune(directory, [s.id for s in store.snapshots(directory)])
        with contextlib.suppress(FileNotFoundError):
            os.unlink(directory / store.RECOPY)
        database.prune(directory, policy.database_days, now)
    if totals.unreadable:
        shown = "; ".join(totals.unreadable[:3])
        more = f" and {len(totals.unreadable) - 3} more" if len(totals.unreadable) > 3 else ""
        problems.append(f"{len(totals.unreadable)} files could not be read ({shown}{more})")
    return Result(
        snapshot=new.name,
        id=info["id"],
        files=totals.files,
        bytes=totals.bytes,
        bytes_copied=totals.bytes_copied,
        bytes_linked=totals.bytes_linked,
        files_copied=totals.copied_files,
        files_linked=totals.linked_files,
        mailboxes=len(totals.mailboxes),
        vanished=totals.vanished,
        duration=round(time.monotonic() - started, 3),
        database_dump=dump_name,
        problems=problems,
    )


def _abandon(directory: Path, incoming: Path, dump_name: str | None) -> None:
    """This snapshot was not made: its partial tree goes, and its database dump too."""
    shutil.rmtree(incoming, ignore_errors=True)
    if dump_name is not None:
        database.discard(directory, dump_name)


def _info(
    snapshot_id: str, now: datetime, totals: Totals, dump_name: str | None, duration: float
) -> dict[str, Any]:
    mailboxes: dict[str, dict[str, list[int]]] = {}
    for (domain, login), counts in sorted(totals.mailboxes.items()):
        mailboxes.setdefault(domain, {})[login] = counts
    return {
        "id": snapshot_id,
        "taken_at": now.isoformat(timespec="microseconds"),
        "files": totals.files,
        "bytes": totals.bytes,
        "bytes_copied": totals.bytes_copied,
        "bytes_linked": totals.bytes_linked,
        "duration": round(duration, 3),
        "database_dump": dump_name,
        "mailboxes": mailboxes,
    }
