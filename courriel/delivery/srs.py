"""Sender Rewriting Scheme, so that forwarded mail passes the receiving provider's SPF.

A message from alice@example.org forwarded by monsite.be to gmail.com leaves with the
envelope sender `SRS0=HHHH=TT=example.org=alice@monsite.be`: monsite.be's SPF allows
us, and a bounce to that address comes back to us, is checked (HMAC and age) and sent
on to alice@example.org. Forwarding an SRS0 address again gives SRS1 (the original
forwarder is kept, so the bounce goes back through it), as in Shevek's SRS paper and
libsrs2/postsrsd.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # base32
_HASH_LEN = 4
_DAY = 86400
_PERIOD = 1024  # timestamps wrap every 1024 days


@dataclass(frozen=True)
class Srs:
    secret: bytes
    max_age_days: int = 21

    def _hash(self, *parts: str) -> str:
        digest = hmac.new(self.secret, "".join(parts).lower().encode(), hashlib.sha1).digest()
        return base64.b64encode(digest).decode()[:_HASH_LEN]

    @staticmethod
    def _timestamp(now: float) -> str:
        day = int(now // _DAY) % _PERIOD
        return _ALPHABET[day >> 5] + _ALPHABET[day & 31]

    def _age_ok(self, stamp: str, now: float) -> bool:
        try:
            then = (_ALPHABET.index(stamp[0].upper()) << 5) | _ALPHABET.index(stamp[1].upper())
        except (ValueError, IndexError):
            return False
        today = int(now // _DAY) % _PERIOD
        return (today - then) % _PERIOD <= self.max_age_days

    def forward(self, sender: str, forwarder_domain: str, now: float | None = None) -> str:
        """The envelope sender for mail from `sender` forwarded by `forwarder_domain`."""
        if not sender or "@" not in sender:
            return sender  # the null sender is never rewritten
        now = time.time() if now is None else now
        local, _, domain = sender.rpartition("@")
        upper = local[:5].upper()
        if upper.startswith("SRS0=") or upper.startswith("SRS0-"):
            # SRS0=HHHH=TT=origdomain=origlocal@firsthop -> SRS1=HHHH=firsthop==HHHH=TT=...
            rest = local[5:]
            hashed = self._hash(domain, rest)
            return f"SRS1={hashed}={domain}=={rest}@{forwarder_domain}"
        if upper.startswith("SRS1=") or upper.startswith("SRS1-"):
            # Already SRS1: keep the original first hop, re-sign for ourselves.
            try:
                _, first_hop, rest = local[5:].split("=", 2)
            except ValueError:
                return sender
            rest = rest.lstrip("=")
            hashed = self._hash(first_hop, rest)
            return f"SRS1={hashed}={first_hop}=={rest}@{forwarder_domain}"
        stamp = self._timestamp(now)
        hashed = self._hash(stamp, domain, local)
        return f"SRS0={hashed}={stamp}={domain}={local}@{forwarder_domain}"

    def reverse(self, address: str, now: float | None = None) -> str | None:
        """The address a bounce to an SRS address must go back to; None if it is not
        one of ours (bad hash, too old, or not SRS at all)."""
        now = time.time() if now is None else now
        local, _, _domain = address.rpartition("@")
        upper = local[:5].upper()
        if upper.startswith("SRS0=") or upper.startswith("SRS0-"):
            try:
                hashed, stamp, orig_domain, orig_local = local[5:].split("=", 3)
            except ValueError:
                return None
            expected = self._hash(stamp, orig_domain, orig_local)
            if not hmac.compare_digest(hashed.lower(), expected.lower()):
                return None
            if not self._age_ok(stamp, now):
                return None
            return f"{orig_local}@{orig_domain}"
        if upper.startswith("SRS1=") or upper.startswith("SRS1-"):
            try:
                hashed, first_hop, rest = local[5:].split("=", 2)
            except ValueError:
                return None
            rest = rest.lstrip("=")
            if not hmac.compare_digest(hashed.lower(), self._hash(first_hop, rest).lower()):
                return None
            return f"SRS0={rest}@{first_hop}"
        return None

    @staticmethod
    def is_srs(address: str) -> bool:
        return address[:5].upper() in {"SRS0=", "SRS1=", "SRS0-", "SRS1-"}


def from_config() -> Srs:
    from courriel.config import get_config
    from courriel.units import parse_duration

    config = get_config()
    secret = config.srs.secret or ("srs:" + _secret_key())
    days = int(parse_duration(config.srs.max_age).total_seconds() // _DAY)
    return Srs(secret.encode(), max_age_days=max(1, days))


def _secret_key() -> str:
    from django.conf import settings

    return str(settings.SECRET_KEY)
