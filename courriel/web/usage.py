"""Disk usage of a customer's mailboxes, for the panel and the API, without making a
page wait for thousands of file reads.

The figure is the sum of every mailbox's `maildirsize`: one small read per mailbox,
about 60 µs each, so 10,000 mailboxes cost more than half a second. Pages therefore
show the last figure (at most a minute old, refreshed in the background when older);
a customer with few mailboxes is counted on the spot the first time, a big one is
counted in the background and the page says the figure is being calculated.
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache import cache
from django.db import connection

from courriel.accounts.models import Domain, Mailbox
from courriel.accounts.services.limits import disk_usage, family

log = logging.getLogger(__name__)

FRESH_SECONDS = 60  # a figure younger than this is shown as it is
COUNT_INLINE_UP_TO = 2000  # mailboxes counted while the page waits, the first time
_KEEP_SECONDS = 24 * 3600


def _key(top_id: int) -> str:
    return f"courriel:disk-usage:{top_id}"


def _refresh(top_id: int) -> None:
    try:
        domain = Domain.objects.get(pk=top_id)
        cache.set(_key(top_id), (disk_usage(domain), time.time()), _KEEP_SECONDS)
    except Exception:  # a background refresh must never take the server down
        log.exception("counting the disk usage of domain %s failed", top_id)
    finally:
        cache.delete(_key(top_id) + ":busy")


def _refresh_and_disconnect(top_id: int) -> None:
    try:
        _refresh(top_id)
    finally:
        connection.close()  # this thread's own database connection


def _refresh_in_background(top_id: int) -> None:
    if not cache.add(_key(top_id) + ":busy", True, 300):
        return  # already being counted
    threading.Thread(
        target=_refresh_and_disconnect, args=(top_id,), daemon=True, name="disk-usage"
    ).start()


def recent_disk_usage(domain: Domain) -> int | None:
    """Bytes used by the customer's mailboxes, at most about a minute old; None while a
    big customer's first count runs in the background."""
    top = domain.top
    entry = cache.get(_key(top.pk))
    if entry is not None:
        used, counted_at = entry
        if time.time() - counted_at > FRESH_SECONDS:
            _refresh_in_background(top.pk)
        return int(used)
    if Mailbox.objects.filter(family(top)).count() <= COUNT_INLINE_UP_TO:
        used = disk_usage(top)
        cache.set(_key(top.pk), (used, time.time()), _KEEP_SECONDS)
        return used
    _refresh_in_background(top.pk)
    return None
