"""Counting what the mail plane does, at the cost of a dictionary increment.

SMTP is the hot path: a database write per message would cost more than the rest of
the message (on SQLite an fsync each). Events are added up in memory, per hour, in
each process (the main one and every SMTP worker), and the delivery housekeeping
writes the sums every few seconds (`flush`), adding them to the hourly and daily
rows, so that several processes and hosting servers sharing a database add up.

The mail plane calls, one call per event: `count` (through `courriel.stats.smtp`'s
two hook wrappers, the router's follow-up and the greylisting engine).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime

from django.db import IntegrityError, transaction
from django.db.models import F, Model
from django.db.models.functions import Greatest

METRICS = ("received", "delivered", "forwarded", "refused", "greylisted", "sent")
MAX_KEYS = 20_000  # beyond this, new domains are folded together until the next flush
FOLDED = "?"

_lock = threading.Lock()
_pending: dict[tuple[int, str, str, str], int] = {}
_hosted: tuple[float, dict[str, str]] = (0.0, {})


def count(metric: str, domain: str = "", reason: str = "", n: int = 1) -> None:
    """Add `n` events of `metric` for `domain` (a recipient's or sender's domain as it
    was written; `flush` maps it to the hosted domain, or "" for none)."""
    key = (int(time.time()) // 3600, metric, domain, reason)
    with _lock:
        if key not in _pending and len(_pending) >= MAX_KEYS:
            key = (key[0], metric, FOLDED, reason)
        _pending[key] = _pending.get(key, 0) + n


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(">")


def message(
    recipients: list[str], replies: list[str], *, sender: str, signed_in: bool, lmtp: bool
) -> None:
    """One message after DATA: received (per recipient domain, once), sent (by a
    signed-in user, for the sender's domain), or refused with its reason."""
    from courriel.stats.reasons import greylisting, reason_of

    seen: set[tuple[str, str, str]] = set()
    for recipient, reply in zip(recipients, replies, strict=False):
        if greylisting(reply):
            continue  # counted by the greylisting engine
        if not reply.startswith("2"):
            event = ("refused", domain_of(recipient), reason_of(reply))
        elif signed_in and not lmtp:
            event = ("sent", domain_of(sender), "")
        else:
            event = ("received", domain_of(recipient), "")
        if event not in seen:
            seen.add(event)
            count(*event)


def routed(delivered_domains: Iterable[str], forwards: dict[tuple[str, str], list[str]]) -> None:
    """Local copies written and forwards queued for one accepted message."""
    for domain in delivered_domains:
        count("delivered", domain)
    for (domain, _via), targets in forwards.items():
        count("forwarded", domain, n=len(targets))


# -- writing ---------------------------------------------------------------------------


def _hosted_names() -> dict[str, str]:
    """Domain and domain alias names -> the hosted domain, read at most every minute."""
    global _hosted
    from courriel.accounts.models import Domain, DomainAlias

    now = time.monotonic()
    if now - _hosted[0] > 60 or not _hosted[1]:
        names = {name: name for name in Domain.objects.values_list("name", flat=True)}
        names.update(DomainAlias.objects.values_list("name", "domain__name"))
        _hosted = (now, names)
    return _hosted[1]


def forget_hosted_names() -> None:
    """Read the hosted names again at the next flush (tests, after a change)."""
    global _hosted
    _hosted = (0.0, {})


def local_day(moment: datetime) -> date:
    from django.utils import timezone

    return timezone.localtime(moment).date()


def _add(model: type[Model], key: dict[str, object], n: int) -> None:
    if model.objects.filter(**key).update(count=F("count") + n):  # type: ignore[attr-defined]
        return
    try:
        with transaction.atomic():
            model.objects.create(**key, count=n)  # type: ignore[attr-defined]
    except IntegrityError:  # another process created it meanwhile
        model.objects.filter(**key).update(count=F("count") + n)  # type: ignore[attr-defined]


def flush() -> int:
    """Write the pending counts; returns how many hourly rows were touched. On a
    database error they are kept for the next flush."""
    from courriel.stats.models import DailyCount, HourlyCount

    with _lock:
        batch = dict(_pending)
        _pending.clear()
    if not batch:
        return 0
    try:
        names = _hosted_names()
        merged: dict[tuple[int, str, str, str], int] = {}
        for (hour, metric, domain, reason), n in batch.items():
            key = (hour, metric, names.get(domain, ""), reason)
            merged[key] = merged.get(key, 0) + n
        with transaction.atomic():
            for (hour, metric, domain, reason), n in merged.items():
                start = datetime.fromtimestamp(hour * 3600, tz=UTC)
                fields = {"metric": metric, "domain": domain, "reason": reason}
                _add(HourlyCount, {"hour": start, **fields}, n)
                _add(DailyCount, {"day": local_day(start), **fields}, n)
    except Exception:
        with _lock:
            for key, n in batch.items():
                _pending[key] = _pending.get(key, 0) + n
        raise
    return len(merged)


def gauge(metric: str, value: int, when: datetime | None = None) -> None:
    """Keep the highest value of the hour and of the day (the queue's size)."""
    from courriel.stats.models import DailyCount, HourlyCount

    when = when or datetime.now(UTC)
    hour = when.replace(minute=0, second=0, microsecond=0)
    for model, key in (
        (HourlyCount, {"hour": hour}),
        (DailyCount, {"day": local_day(when)}),
    ):
        fields = {**key, "metric": metric, "domain": "", "reason": ""}
        if not model.objects.filter(**fields).update(count=Greatest(F("count"), value)):
            try:
                with transaction.atomic():
                    model.objects.create(**fields, count=value)
            except IntegrityError:
                model.objects.filter(**fields).update(count=Greatest(F("count"), value))


def pending() -> dict[tuple[int, str, str, str], int]:
    """What is counted and not yet written (tests, `courriel status`)."""
    with _lock:
        return dict(_pending)
