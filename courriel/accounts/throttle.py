"""Sign-in throttling that slows attackers, not users, the same for every door (panel,
API, IMAP, POP3, SMTP AUTH) and every process (`courriel serve` runs SMTP workers
beside the main process): the counts live in the database.

The rules (`[auth]` keys, defaults in `courriel config default`):

- failures are counted per (login, client address) and per client address, never per
  login alone, so an attacker at one address cannot lock the real user out at another;
- each *different* wrong password counts once: the same one tried again (a phone
  with an old password, smtplib trying PLAIN then LOGIN) is refused without costing an
  Argon2 check, and is not counted again;
- an address the login signed in from successfully in the last `known_address_days`
  gets in at once, whatever is being guessed from elsewhere or from its neighbours;
- against guessing spread over many addresses, a login with many failures from
  unknown addresses is *slowed down*: checks from unknown addresses take turns, a
  delay apart that doubles up to `max_slow_down` (never a lock: every turn comes).

`check` says what to do before a password is checked; `failed` and `succeeded` record
the outcome. Only a keyed 32-bit digest of a wrong password is stored, enough to tell
two attempts apart, useless to recover the password.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from courriel.config import get_config
from courriel.units import parse_duration

_KNOWN_CACHE_SECONDS = 600.0  # a known address stays known in this process this long
_REFRESH_EVERY = 24 * 3600.0  # a known address's last success is rewritten once a day


@dataclass(frozen=True)
class Limits:
    window: timedelta
    per_login_address: int
    per_address: int
    slow_after: int
    slow_window: timedelta
    max_slow: float
    known_days: int

    @classmethod
    def from_config(cls) -> Limits:
        auth = get_config().auth
        return cls(
            window=parse_duration(auth.failure_window),
            per_login_address=int(auth.max_failures_per_login_address),
            per_address=int(auth.max_failures_per_address),
            slow_after=int(auth.slow_down_after),
            slow_window=parse_duration(auth.slow_down_window),
            max_slow=parse_duration(auth.max_slow_down).total_seconds(),
            known_days=int(auth.known_address_days),
        )


@dataclass(frozen=True)
class Verdict:
    """What to do with an attempt before its password is checked."""

    wait: int = 0  # > 0: refused for now; try again in this many seconds
    delay: float = 0.0  # > 0: check the password only after this many seconds
    repeat: bool = False  # this wrong password was just tried: it is still wrong
    pair_failures: int = 0  # failures of this login from this address, in the window


def digest(login: str, password: str) -> str:
    from django.conf import settings

    key = ("courriel.signin:" + settings.SECRET_KEY).encode()
    message = f"{login}\0{password}".encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:8]


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, int((moment - now).total_seconds()) + 1)


class Throttle:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (login, address) -> (known until, last written) in time.monotonic()
        self._known: dict[tuple[str, str], tuple[float, float]] = {}

    # -- known addresses -------------------------------------------------------------
    def _cached_known(self, login: str, address: str) -> tuple[float, float] | None:
        with self._lock:
            found = self._known.get((login, address))
        return found if found is not None and found[0] > time.monotonic() else None

    def known(self, login: str, address: str, limits: Limits | None = None) -> bool:
        from courriel.accounts.models import KnownAddress

        if self._cached_known(login, address):
            return True
        limits = limits or Limits.from_config()
        since = timezone.now() - timedelta(days=limits.known_days)
        found = KnownAddress.objects.filter(
            login=login, address=address, last_success__gt=since
        ).exists()
        if found:
            with self._lock:
                expires = time.monotonic() + _KNOWN_CACHE_SECONDS
                self._known[(login, address)] = (expires, float("-inf"))
        return found

    # -- before the password is checked ------------------------------------------------
    def check(
        self,
        login: str,
        address: str,
        password: str = "",
        *,
        pace: bool = True,
        changed_at: datetime | None = None,
    ) -> Verdict:
        """`changed_at`: when the password last changed (a wrong password tried before
        may be the right one now)."""
        from courriel.accounts.models import SignInFailure, SignInPace

        limits = Limits.from_config()
        now = timezone.now()
        since = now - limits.window
        rows = list(
            SignInFailure.objects.filter(address=address, at__gt=since).values_list(
                "login", "attempt", "at"
            )
        )
        tried = digest(login, password) if password else ""
        pair = {attempt: at for who, attempt, at in rows if who == login}
        known: bool | None = None

        if tried and tried in pair and (changed_at is None or pair[tried] > changed_at):
            return Verdict(repeat=True, pair_failures=len(pair))
        if len(pair) >= limits.per_login_address:
            return Verdict(wait=_seconds_until(min(pair.values()) + limits.window, now))
        distinct = {(who, attempt): at for who, attempt, at in rows}
        if len(distinct) >= limits.per_address:
            known = self.known(login, address, limits)
            if not known:
                return Verdict(wait=_seconds_until(min(distinct.values()) + limits.window, now))

        paced = SignInPace.objects.filter(login=login, until__gt=now).exists()
        if paced:
            known = self.known(login, address, limits) if known is None else known
            if not known and pace:
                return self._take_turn(login, now, limits, len(pair))
        return Verdict(pair_failures=len(pair))

    def _take_turn(self, login: str, now: datetime, limits: Limits, pair: int) -> Verdict:
        """Reserve the next turn of a slowed-down login (one check per interval, in
        every process: the turn is taken in the database)."""
        from courriel.accounts.models import SignInPace

        with transaction.atomic():
            row = SignInPace.objects.select_for_update().filter(login=login).first()
            if row is None:
                return Verdict(pair_failures=pair)
            turn = max(now, row.next_check)
            delay = (turn - now).total_seconds()
            if delay > 2 * limits.max_slow:
                return Verdict(wait=int(delay))  # too many waiting already: come back
            row.next_check = turn + timedelta(seconds=row.interval)
            row.save(update_fields=["next_check"])
        return Verdict(delay=delay, pair_failures=pair)

    # -- after ---------------------------------------------------------------------------
    def failed(
        self, login: str, address: str, password: str, door: str, *, known: bool | None = None
    ) -> None:
        from courriel.accounts.models import SignInFailure, SignInPace

        limits = Limits.from_config()
        now = timezone.now()
        if known is None:
            known = self.known(login, address, limits)
        SignInFailure.objects.create(
            login=login,
            address=address[:64],
            attempt=digest(login, password),
            door=door[:8],
            known=known,
            at=now,
        )
        if known:
            return
        spread = (
            SignInFailure.objects.filter(login=login, known=False, at__gt=now - limits.slow_window)
            .values("address", "attempt")
            .distinct()
            .count()
        )
        if spread < limits.slow_after:
            return
        interval = min(limits.max_slow, 2.0 ** (spread - limits.slow_after))
        until = now + limits.slow_window
        with transaction.atomic():
            row, created = SignInPace.objects.select_for_update().get_or_create(
                login=login, defaults={"next_check": now, "interval": interval, "until": until}
            )
            if not created:
                row.interval, row.until = interval, until
                row.save(update_fields=["interval", "until"])

    def succeeded(self, login: str, address: str, *, pair_failures: int = 0) -> None:
        """Remember the address as known (written at most once a day per process) and
        forget this address's failures for the login (the user's own typos)."""
        from courriel.accounts.models import KnownAddress, SignInFailure

        if pair_failures:
            SignInFailure.objects.filter(login=login, address=address).delete()
        cached = self._cached_known(login, address)
        now_mono = time.monotonic()
        if cached is not None and now_mono - cached[1] < _REFRESH_EVERY:
            return
        KnownAddress.objects.update_or_create(
            login=login, address=address[:64], defaults={"last_success": timezone.now()}
        )
        with self._lock:
            self._known[(login, address)] = (now_mono + _KNOWN_CACHE_SECONDS, now_mono)

    def reset(self) -> None:
        """Forget what this process remembers (the database rows are the tests' own)."""
        with self._lock:
            self._known.clear()


throttle = Throttle()
