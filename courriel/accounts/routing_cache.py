"""A cache of routing answers (address resolution, mailbox rows) for the mail plane.

Resolving a recipient costs several queries; at hundreds of messages a second that
is most of the work, while the answers change only when someone edits accounts.
Every committed change (everything goes through `courriel.audit.log.record`) bumps
a generation file in the data directory; the cache drops everything when that file
changes, so a change made by the panel, the API or the CLI on this host is seen by
the very next message. Hosting servers that share a PostgreSQL database but not the
data directory see each other's changes within `[smtp] routing_cache` seconds.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from courriel import cachedonly
from courriel.config import get_config

if TYPE_CHECKING:
    from courriel.accounts.models import Mailbox

T = TypeVar("T")
_FILE = "routing.generation"


def _generation_path() -> str:
    return _path_in(get_config().data_dir)


@lru_cache(maxsize=16)
def _path_in(data_dir: Path) -> str:
    return str(data_dir / _FILE)


def bump() -> None:
    """Tell every process on this host that accounts changed."""
    path = _generation_path()
    try:
        with open(path, "w") as handle:
            handle.write(str(time.time_ns()))
    except OSError:
        pass  # no data directory yet (tests, first start): nothing is cached either


class RoutingCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, object]] = {}
        self._stamp: tuple[str, int] | None = None
        self._last_check: tuple[str, float, tuple[str, int]] | None = None

    def _current_stamp(self) -> tuple[str, int]:
        """The generation file's identity, looked at no more than every 50 ms (a
        change is still seen before any client could notice the difference)."""
        path = _generation_path()
        now = time.monotonic()
        last = self._last_check
        if last is not None and last[0] == path and now - last[1] < 0.05:
            return last[2]
        try:
            stamp = (path, os.stat(path).st_mtime_ns)
        except OSError:
            stamp = (path, 0)
        self._last_check = (path, now, stamp)
        return stamp

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached answer, else `compute()`'s (in cached-only mode, `NotCached`:
        computing it would query the database)."""
        ttl = get_config().smtp.routing_cache_seconds
        if ttl <= 0:
            if cachedonly.active():
                raise cachedonly.miss(f"routing {key!r}")
            return compute()
        stamp = self._current_stamp()
        now = time.monotonic()
        with self._lock:
            if stamp != self._stamp:
                self._entries.clear()
                self._stamp = stamp
            found = self._entries.get(key)
            if found is not None and found[0] > now:
                return found[1]  # type: ignore[return-value]
        if cachedonly.active():
            raise cachedonly.miss(f"routing {key!r}")
        value = compute()
        with self._lock:
            if self._stamp == stamp:
                if len(self._entries) > 100_000:
                    self._entries.clear()
                self._entries[key] = (now + ttl, value)
        return value

    def peek(self, key: Hashable) -> object | None:
        """The cached value, or None (without computing anything)."""
        if get_config().smtp.routing_cache_seconds <= 0:
            return None
        stamp = self._current_stamp()
        with self._lock:
            if stamp != self._stamp:
                return None
            found = self._entries.get(key)
            return found[1] if found is not None and found[0] > time.monotonic() else None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


cache = RoutingCache()


def cached_mailboxes(ids: list[int]) -> dict[int, Mailbox]:
    """Mailbox rows (with domain and plan) for routing decisions, from the cache."""
    found: dict[int, Mailbox] = {}
    for mailbox_id in ids:
        mailbox = cache.get(("mailbox", mailbox_id), lambda i=mailbox_id: _load_mailbox(i))
        if mailbox is not None:
            found[mailbox_id] = mailbox
    return found


def _load_mailbox(mailbox_id: int) -> Mailbox | None:
    from courriel.accounts.models import Mailbox

    return (
        Mailbox.objects.select_related("domain__parent__plan", "domain__plan", "domain__server")
        .filter(pk=mailbox_id)
        .first()
    )
