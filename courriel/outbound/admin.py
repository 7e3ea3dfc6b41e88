"""Looking after the queue from the command line and the panel: list, show, retry now,
delete, and the figures `courriel status` reports."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import asdict, dataclass

from courriel.config import get_config
from courriel.errors import NotFoundError
from courriel.outbound.spool import Entry, get_spool


@dataclass(frozen=True)
class QueueFigures:
    entries: int
    recipients_pending: int
    deferred: int  # entries that failed at least once
    oldest_age_seconds: float | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def figures() -> QueueFigures:
    entries = list(get_spool().entries())
    now = time.time()
    return QueueFigures(
        entries=len(entries),
        recipients_pending=sum(len(e.pending) for e in entries),
        deferred=sum(1 for e in entries if e.attempts),
        oldest_age_seconds=max((now - e.created for e in entries), default=None),
    )


def get_entry(entry_id: str) -> Entry:
    entry = get_spool().load(entry_id.strip().upper())
    if entry is None:
        raise NotFoundError(f"No queue entry {entry_id!r}: `courriel queue list` shows them.")
    return entry


def retry(entry_ids: list[str] | None = None) -> int:
    """Make entries due now (all when none are named) and wake the running server."""
    spool = get_spool()
    targets = [get_entry(i) for i in entry_ids] if entry_ids else list(spool.entries())
    now = time.time()
    for entry in targets:
        entry.next_attempt = now
        spool.save(entry)
    wake_server()
    return len(targets)


def delete(entry_ids: list[str]) -> int:
    spool = get_spool()
    entries = [get_entry(i) for i in entry_ids]
    for entry in entries:
        spool.remove(entry.id)
    return len(entries)


def pid_path() -> os.PathLike[str]:
    return get_config().data_dir / "courriel.pid"


def running_pid() -> int | None:
    try:
        with open(pid_path()) as handle:
            pid = int(handle.read().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def wake_server() -> bool:
    """Ask a running `courriel serve` to run the queue now (SIGUSR1)."""
    pid = running_pid()
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGUSR1)
    except OSError:
        return False
    return True
