"""What to do with one envelope recipient, decided once for SMTP, LMTP and the queue's
local deliveries: a hosted address (through address resolution), a bounce coming back
to one of our SRS addresses, mail a signed-in user relays out, or a refusal with its
SMTP reply."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Literal

from django.utils import timezone

from courriel.accounts.resolution import Resolution, hosted_domain, resolve
from courriel.accounts.routing_cache import cache
from courriel.delivery.replies import Outcome
from courriel.delivery.srs import Srs, from_config

Kind = Literal["local", "srs_return", "relay", "refused"]


@dataclass(frozen=True)
class Classified:
    kind: Kind
    resolution: Resolution | None = None
    srs_target: str = ""
    refusal: Outcome | None = None


_today: tuple[float, date] = (0.0, date.min)


def _local_date() -> date:
    """Today in the server's time zone (automatic replies depend on it), worked out
    at most once a second: it is part of every routing cache key."""
    global _today
    now = time.monotonic()
    if now - _today[0] > 1.0:
        _today = (now, timezone.localdate())
    return _today[1]


def _key(address: str, may_relay: bool) -> tuple[object, ...]:
    return ("classify", address.lower(), may_relay, _local_date())


def classify(address: str, *, may_relay: bool, srs: Srs | None = None) -> Classified:
    if Srs.is_srs(address):
        return _classify(address, may_relay=may_relay, srs=srs)
    return cache.get(
        _key(address, may_relay), lambda: _classify(address, may_relay=may_relay, srs=srs)
    )


def classify_cached(address: str, *, may_relay: bool) -> Classified | None:
    """The answer if it is already known: the SMTP server then decides on its event
    loop, without a trip to a worker thread."""
    if Srs.is_srs(address):
        return None
    found = cache.peek(_key(address, may_relay))
    return found if isinstance(found, Classified) else None


def _classify(address: str, *, may_relay: bool, srs: Srs | None = None) -> Classified:
    domain = address.rpartition("@")[2].lower()
    if Srs.is_srs(address) and hosted_domain(domain) is not None:
        target = (srs or from_config()).reverse(address)
        if target is None:
            return Classified(
                "refused", refusal=Outcome(550, "5.1.1", "Invalid or expired SRS address")
            )
        return Classified("srs_return", srs_target=target)
    resolution = resolve(address)
    status = resolution.status
    if status == "deliver":
        return Classified("local", resolution)
    if status == "not_local":
        if may_relay:
            return Classified("relay")
        return Classified(
            "refused", resolution, refusal=Outcome(554, "5.7.1", "Relay access denied")
        )
    if status == "invalid":
        return Classified(
            "refused", resolution, refusal=Outcome(501, "5.1.3", "Bad recipient address syntax")
        )
    if status == "bounce":
        text = resolution.bounce_message or "Mailbox unavailable"
        return Classified("refused", resolution, refusal=Outcome(550, "5.1.1", text))
    if status == "loop":
        return Classified(
            "refused",
            resolution,
            refusal=Outcome(554, "5.4.6", "Alias loop, mail cannot be delivered"),
        )
    return Classified("refused", resolution, refusal=Outcome(550, "5.1.1", "No such user here"))
