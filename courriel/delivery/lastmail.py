"""The mailbox's "new mail received" time, recorded in batches.

Updating a database row for every message would add a write (and, on SQLite, an
fsync) to each delivery; the time only needs to be right within seconds, so
deliveries note it here and the SMTP service flushes every few seconds and at stop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

_lock = threading.Lock()
_pending: dict[int, datetime] = {}


def note(mailbox_ids: Iterable[int], when: datetime | None = None) -> None:
    when = when or timezone.now()
    with _lock:
        for mailbox_id in mailbox_ids:
            _pending[mailbox_id] = when


def flush() -> int:
    """Write the noted times; returns how many mailboxes were updated."""
    from courriel.accounts.models import Mailbox

    with _lock:
        batch = dict(_pending)
        _pending.clear()
    by_time: dict[datetime, list[int]] = {}
    for mailbox_id, when in batch.items():
        by_time.setdefault(when, []).append(mailbox_id)
    try:
        for when, ids in by_time.items():
            Mailbox.objects.filter(pk__in=ids).update(last_mail_at=when)
    except Exception:
        with _lock:  # keep them for the next flush
            for mailbox_id, when in batch.items():
                _pending.setdefault(mailbox_id, when)
        raise
    return len(batch)
