"""Is there room for a message? Mailbox quota (Maildir++ accounting) and the domain's
total mail quota (the plan's, shared by the customer's family of servers), plus the
one-time warnings at 80 % (user) and 95 % (user and owner).

The manual warns that a full mailbox stops forwarding; ours keeps forwarding and
warns before it fills up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from courriel.accounts.models import Domain, Mailbox
from courriel.accounts.services.limits import disk_usage
from courriel.config import get_config
from courriel.mailstore import quota as maildirsize

if TYPE_CHECKING:
    from courriel.delivery.journal import Record

log = logging.getLogger("courriel.quota")
_DOMAIN_CACHE_SECONDS = 10.0
_domain_usage: dict[int, tuple[float, int]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Room:
    used: int
    limit: int | None  # None: unlimited

    def fits(self, size: int) -> bool:
        return self.limit is None or self.used + size <= self.limit

    @property
    def full(self) -> bool:
        return self.limit is not None and self.used >= self.limit


def maildir_of(mailbox: Mailbox) -> Path:
    return _maildir(get_config().mail_root, mailbox.maildir)


@lru_cache(maxsize=65536)
def _maildir(root: Path, relative: str) -> Path:
    """Paths are built once per mailbox: the delivery path asks several times a message."""
    return root / relative


def domain_used(domain: Domain, cached: bool = False) -> int:
    """Mail stored by the customer's family of servers (cached a few seconds: the
    total only needs to be roughly right, the mailbox quota is exact). `cached`: on
    the event loop, after `domain_used_is_known` said yes; the figure is then taken
    from memory even if it expired since that look (never the database there)."""
    top = domain.top
    now = time.monotonic()
    with _lock:
        known = _domain_usage.get(top.pk)
    if known and (known[0] > now or cached):
        return known[1]
    used = disk_usage(top)
    with _lock:
        _domain_usage[top.pk] = (now + _DOMAIN_CACHE_SECONDS, used)
    return used


def domain_used_is_known(domain: Domain) -> bool:
    """Whether domain_used() would answer from its cache (no database access)."""
    if domain.top.effective_plan.mail_quota is None:
        return True
    with _lock:
        cached = _domain_usage.get(domain.top.pk)
    return cached is not None and cached[0] > time.monotonic()


def note_domain_growth(domain: Domain, size: int) -> None:
    with _lock:
        cached = _domain_usage.get(domain.top.pk)
        if cached:
            _domain_usage[domain.top.pk] = (cached[0], cached[1] + size)


def mailbox_room(mailbox: Mailbox) -> Room:
    return Room(maildirsize.usage(maildir_of(mailbox))[0], mailbox.quota)


def has_room(mailbox: Mailbox, size: int, cached: bool = False) -> bool:
    """`cached`: see `domain_used`."""
    # An unlimited mailbox needs no look at its `maildirsize` (a stat per message).
    if mailbox.quota is not None and not mailbox_room(mailbox).fits(size):
        return False
    return domain_room(mailbox, cached).fits(size)


def domain_room(mailbox: Mailbox, cached: bool = False) -> Room:
    total = mailbox.domain.top.effective_plan.mail_quota
    if total is None:
        return Room(0, None)
    return Room(domain_used(mailbox.domain, cached), total)


def too_big_ever(mailbox: Mailbox, size: int) -> bool:
    """A message larger than the quota itself can never be stored: refuse it for good."""
    limits = [mailbox.quota, mailbox.domain.top.effective_plan.mail_quota]
    return any(limit is not None and size > limit for limit in limits)


# --- warnings -------------------------------------------------------------------------

# Levels already warned about, per mailbox, as last read from the database (kept a
# minute: the database is the authority, since several processes deliver mail).
_sent_levels: dict[int, tuple[float, set[int]]] = {}
_LEVELS_FRESH = 60.0


def _levels_sent(mailbox_id: int) -> set[int]:
    from courriel.delivery.models import QuotaWarning

    now = time.monotonic()
    with _lock:
        known = _sent_levels.get(mailbox_id)
    if known is not None and now - known[0] < _LEVELS_FRESH:
        return known[1]
    levels = set(QuotaWarning.objects.filter(mailbox_id=mailbox_id).values_list("level", flat=True))
    with _lock:
        _sent_levels[mailbox_id] = (now, levels)
    return levels


def _remember(mailbox_id: int, levels: set[int]) -> None:
    with _lock:
        _sent_levels[mailbox_id] = (time.monotonic(), levels)


def check_warnings(mailbox: Mailbox) -> list[int]:
    """Send the warning now due for this mailbox, once; returns the level sent."""
    from courriel.accounts.services.mailboxes import primary_email
    from courriel.delivery.models import QuotaWarning
    from courriel.delivery.notices import send_quota_warning

    if mailbox.quota is None:
        return []
    config = get_config().quota
    levels = (config.warn_user, config.warn_owner)
    room = mailbox_room(mailbox)
    percent = room.used * 100 / mailbox.quota if mailbox.quota else 100
    sent = _levels_sent(mailbox.pk)
    if percent < config.warn_user:
        if sent:  # back under the first level: warn again next time it fills up
            QuotaWarning.objects.filter(mailbox=mailbox).delete()
            _remember(mailbox.pk, set())
        return []
    level = max(lvl for lvl in levels if percent >= lvl)
    if level in sent:
        return []
    # The database decides who sends it: the row is created by exactly one delivery,
    # whichever process it runs in; the lower level is implied by the higher one.
    _, created = QuotaWarning.objects.get_or_create(mailbox=mailbox, level=level)
    for lower in levels:
        if lower < level:
            QuotaWarning.objects.get_or_create(mailbox=mailbox, level=lower)
    _remember(mailbox.pk, sent | {lvl for lvl in levels if lvl <= level})
    if not created:
        return []
    recipients = [address for address in [primary_email(mailbox)] if address]
    owner = mailbox.domain.top.owner
    if level == config.warn_owner and owner is not None and owner.pk != mailbox.pk:
        recipients += [address for address in [primary_email(owner)] if address]
    if recipients:
        send_quota_warning(mailbox, level, room.used, mailbox.quota, recipients)
    return [level]


def may_warn(mailboxes: Iterable[Mailbox | None]) -> bool:
    """Whether a delivery to these mailboxes may make a warning due: never for a
    mailbox without a quota (`check_warnings`). None, a mailbox not known: maybe."""
    return any(mailbox is None or mailbox.quota is not None for mailbox in mailboxes)


def warn_after_delivery(record: Record) -> None:
    """Journal hook: once copies are in their Maildirs, see whether a warning is due."""
    from django.db import close_old_connections

    from courriel.accounts.routing_cache import cached_mailboxes

    close_old_connections()
    for mailbox in cached_mailboxes([copy.mailbox_id for copy in record.copies]).values():
        check_warnings(mailbox)
