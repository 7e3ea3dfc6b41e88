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


def domain_used(domain: Domain) -> int:
    """Mail stored by the customer's family of servers (cached a few seconds: the
    total only needs to be roughly right, the mailbox quota is exact)."""
    top = domain.top
    now = time.monotonic()
    with _lock:
        cached = _domain_usage.get(top.pk)
    if cached and cached[0] > now:
        return cached[1]
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


def domain_room(mailbox: Mailbox) -> Room:
    total = mailbox.domain.top.effective_plan.mail_quota
    if total is None:
        return Room(0, None)
    return Room(domain_used(mailbox.domain), total)


def has_room(mailbox: Mailbox, size: int) -> bool:
    return mailbox_room(mailbox).fits(size) and domain_room(mailbox).fits(size)


def too_big_ever(mailbox: Mailbox, size: int) -> bool:
    """A message larger than the quota itself can never be stored: refuse it for good."""
    limits = [mailbox.quota, mailbox.domain.top.effective_plan.mail_quota]
    return any(limit is not None and size > limit for limit in limits)


# --- warnings -------------------------------------------------------------------------

_sent_levels: dict[int, set[int]] = {}


def _levels_sent(mailbox_id: int) -> set[int]:
    from courriel.delivery.models import QuotaWarning

    with _lock:
        known = _sent_levels.get(mailbox_id)
    if known is None:
        known = set(
            QuotaWarning.objects.filter(mailbox_id=mailbox_id).values_list("level", flat=True)
        )
        with _lock:
            _sent_levels[mailbox_id] = known
    return known


def check_warnings(mailbox: Mailbox) -> list[int]:
    """Send the warnings now due for this mailbox; returns the levels sent."""
    from courriel.accounts.services.mailboxes import primary_email
    from courriel.delivery.models import QuotaWarning
    from courriel.delivery.notices import send_quota_warning

    if mailbox.quota is None:
        return []
    config = get_config().quota
    room = mailbox_room(mailbox)
    percent = room.used * 100 / mailbox.quota if mailbox.quota else 100
    sent = _levels_sent(mailbox.pk)
    if percent < config.warn_user:
        if sent:
            QuotaWarning.objects.filter(mailbox=mailbox).delete()
            with _lock:
                _sent_levels[mailbox.pk] = set()
        return []
    due = []
    user = primary_email(mailbox)
    owner = mailbox.domain.top.owner
    for level in (config.warn_owner, config.warn_user):
        if percent >= level and level not in sent:
            recipients = [user] if user else []
            if level == config.warn_owner and owner is not None and owner.pk != mailbox.pk:
                owner_address = primary_email(owner)
                if owner_address:
                    recipients.append(owner_address)
            if recipients:
                send_quota_warning(mailbox, level, room.used, mailbox.quota, recipients)
            QuotaWarning.objects.get_or_create(mailbox=mailbox, level=level)
            due.append(level)
            break  # the highest level due says it all; lower ones are implied
    if due:
        with _lock:
            _sent_levels[mailbox.pk] = sent | {
                level for level in (config.warn_user, config.warn_owner) if level <= due[0]
            }
        for level in (config.warn_user, config.warn_owner):
            if level < due[0]:
                QuotaWarning.objects.get_or_create(mailbox=mailbox, level=level)
    return due


def warn_after_delivery(record: Record) -> None:
    """Journal hook: once copies are in their Maildirs, see whether a warning is due."""
    from django.db import close_old_connections

    from courriel.accounts.routing_cache import cached_mailboxes

    close_old_connections()
    for mailbox in cached_mailboxes([copy.mailbox_id for copy in record.copies]).values():
        check_warnings(mailbox)
