"""The one way a person signs in, whatever the door (panel, API, IMAP, POP3, SMTP
AUTH): who the identifier is, the throttle's verdict, the password check, and the
record of the outcome. The doors only turn an `Attempt` into their own replies.

Synchronous (Argon2 is slow on purpose): the asyncio servers call `asign_in`, which
runs it in a worker thread and waits out a slow-down on the event loop.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import TYPE_CHECKING

from courriel.accounts.throttle import Verdict, throttle
from courriel.errors import PermissionDeniedError, TooManyAttemptsError
from courriel.i18n import gettext as _
from courriel.i18n import ngettext

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from courriel.accounts.models import Mailbox
    from courriel.accounts.permissions import Actor

MAX_IDENTIFIER = 254


class Door(StrEnum):
    PANEL = "panel"
    API = "api"
    IMAP = "imap"
    POP3 = "pop3"
    SMTP = "smtp"


MAIL_DOORS = frozenset({Door.IMAP, Door.POP3, Door.SMTP})


class Outcome(Enum):
    OK = "ok"
    FAILED = "failed"  # wrong login or password (never says which)
    DISABLED = "disabled"  # right password, login temporarily disabled
    THROTTLED = "throttled"  # not checked: too many failures, try again in `wait` s
    SLOWED = "slowed"  # not checked yet: wait `delay` s, then `attempt(paced=True)`


@dataclass
class Attempt:
    outcome: Outcome
    login: str = ""
    mailbox: Mailbox | None = None
    user: User | None = None  # a provider admin (panel only)
    wait: int = 0
    delay: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


class VerifiedCache:
    """Recently verified mail-client passwords, like Dovecot's auth_cache: clients log
    in again every few minutes (and mbsync opens several connections), and each Argon2
    check costs a quarter of a second of CPU on purpose. Only a keyed hash of the
    password is kept (per-process random key), under the mailbox and the stored hash it
    matched (the account password's or an app password's), so a password change, a
    revoked app password, a disabled login or a deleted mailbox takes effect at once:
    the database is still read at every login."""

    def __init__(self, ttl: float = 300.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[tuple[int, str], tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8", "surrogatepass"), "sha256").digest()

    def hit(self, key: tuple[int, str], password: str) -> bool:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[1] < time.monotonic():
            return False
        return hmac.compare_digest(entry[0], self._digest(password))

    def remember(self, key: tuple[int, str], password: str) -> None:
        entry = (self._digest(password), time.monotonic() + self.ttl)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


verified = VerifiedCache()


def identify(identifier: str, door: Door) -> tuple[str, Mailbox | None]:
    """The login failures of a mail client are counted against, and its mailbox (for
    a sign-in checked elsewhere: the edge's Dovecot)."""
    login, mailbox, _user = _who(identifier, door)
    return login, mailbox


def _who(identifier: str, door: Door) -> tuple[str, Mailbox | None, User | None]:
    """The login failures are counted against: a mailbox's login (whether it was typed
    as the login or the primary address), a provider admin's username on the panel,
    or the identifier as typed for nobody."""
    from courriel.accounts.services.mailboxes import find_login

    typed = (identifier or "").strip()[:MAX_IDENTIFIER]
    mailbox = find_login(typed)
    if mailbox is not None:
        return mailbox.login, mailbox, None
    if door is Door.PANEL and typed:
        from django.contrib.auth.models import User

        user = User.objects.filter(username=typed).first()
        if user is not None:
            return user.username, None, user
    return typed.lower(), None, None


def _cached(key: tuple[int, str], password: str, check: Callable[[], bool]) -> bool:
    if verified.hit(key, password):
        return True
    if check():
        verified.remember(key, password)
        return True
    return False


def _mail_password_ok(mailbox: Mailbox, password: str) -> bool:
    """A mail program signs in with an app password, or with the account password
    unless two-factor sign-in is on (then the account password alone must not open the
    mailbox: it is checked against nothing, at the same cost)."""
    from courriel.accounts.services import twofactor
    from courriel.accounts.services.mailboxes import password_matches

    for candidate in twofactor.app_password_candidates(mailbox, password):
        key = (mailbox.pk, candidate.password_hash)
        if _cached(key, password, lambda c=candidate: twofactor.app_password_matches(c, password)):
            return True
    if twofactor.enabled(mailbox) is not None:
        password_matches(None, password)
        return False
    key = (mailbox.pk, mailbox.password_hash)
    return _cached(key, password, lambda: password_matches(mailbox, password))


def _password_ok(mailbox: Mailbox | None, user: User | None, password: str, door: Door) -> bool:
    from courriel.accounts.services.mailboxes import password_matches

    if user is not None:
        return bool(user.is_active and (user.is_staff or user.is_superuser)) and (
            user.check_password(password)
        )
    if mailbox is not None and door in MAIL_DOORS:
        return _mail_password_ok(mailbox, password)
    return password_matches(mailbox, password)


def attempt(
    identifier: str, password: str, address: str, door: Door, *, paced: bool = False
) -> Attempt:
    """One sign-in attempt. `paced`: the caller already waited its turn (SLOWED)."""
    login, mailbox, user = _who(identifier, door)
    changed_at = mailbox.password_changed_at if mailbox is not None else None
    verdict: Verdict = throttle.check(
        login, address, password, pace=not paced, changed_at=changed_at
    )
    if verdict.wait:
        return Attempt(Outcome.THROTTLED, login, wait=verdict.wait)
    if verdict.delay:
        return Attempt(Outcome.SLOWED, login, delay=verdict.delay)
    if verdict.repeat:  # the same wrong password again: still wrong, counted once
        return Attempt(Outcome.FAILED, login)
    if not _password_ok(mailbox, user, password, door):
        throttle.failed(login, address, password, door)
        return Attempt(Outcome.FAILED, login)
    if mailbox is not None and mailbox.login_disabled:
        return Attempt(Outcome.DISABLED, login, mailbox=mailbox)
    throttle.succeeded(login, address, pair_failures=verdict.pair_failures)
    return Attempt(Outcome.OK, login, mailbox=mailbox, user=user)


async def asign_in(identifier: str, password: str, address: str, door: Door) -> Attempt:
    """`attempt` for the asyncio servers: in a worker thread, and a slow-down waited
    out on the event loop (it costs the server nothing)."""
    from courriel.dbthread import run_db

    result = await run_db(attempt, identifier, password, address, door)
    if result.outcome is Outcome.SLOWED:
        await asyncio.sleep(result.delay)
        result = await run_db(attempt, identifier, password, address, door, paced=True)
    return result


def throttled_message(wait: int) -> str:
    minutes = max(1, (wait + 59) // 60)
    return ngettext(
        "Too many failed logins. Wait %(minutes)d minute and try again.",
        "Too many failed logins. Wait %(minutes)d minutes and try again.",
        minutes,
    ) % {"minutes": minutes}


def confirm_password(holder: Mailbox | User, password: str, address: str, door: Door) -> None:
    """Ask a signed-in person for their current password again (before a password
    change, a new API token, turning two-factor sign-in off): throttled like a sign-in,
    so a stolen session cannot guess it either."""
    from django.contrib.auth.models import User

    login = holder.username if isinstance(holder, User) else holder.login
    changed_at = None if isinstance(holder, User) else holder.password_changed_at
    verdict = throttle.check(login, address, password, pace=False, changed_at=changed_at)
    if verdict.wait:
        raise TooManyAttemptsError(
            throttled_message(verdict.wait), retry_after=verdict.wait, field="current_password"
        )
    mailbox = None if isinstance(holder, User) else holder
    user = holder if isinstance(holder, User) else None
    if verdict.repeat or not password or not _password_ok(mailbox, user, password, door):
        if not verdict.repeat and password:
            throttle.failed(login, address, password, door)
        raise PermissionDeniedError(
            _("This is not your current password."), field="current_password"
        )
    throttle.succeeded(login, address, pair_failures=verdict.pair_failures)


@dataclass(frozen=True)
class Proof:
    """The current password a signed-in person typed again, and where from."""

    password: str
    address: str = ""
    door: Door = Door.PANEL


def prove(actor: Actor, holder: Mailbox | User | None, proof: Proof | None) -> None:
    """A person at a network door changing their own credentials (password, API
    tokens, two-factor sign-in) types their current password again; trusted code (the
    CLI) and someone managing another person's mailbox do not."""
    if holder is None or not actor.remote or not actor.owns(holder):
        return
    if proof is None or not proof.password:
        raise PermissionDeniedError(
            _("Type your current password to confirm this change."), field="current_password"
        )
    confirm_password(holder, proof.password, proof.address, proof.door)


def second_factor(holder: Mailbox | User, code: str, address: str) -> Attempt:
    """The code asked after the password when two-factor sign-in is on (a six-digit
    TOTP code or a recovery code), throttled like a password."""
    from django.contrib.auth.models import User

    from courriel.accounts.services import twofactor

    is_user = isinstance(holder, User)
    login = holder.username if is_user else holder.login
    code = (code or "").strip()[:64]
    verdict = throttle.check(login, address, code, pace=False)
    if verdict.wait:
        return Attempt(Outcome.THROTTLED, login, wait=verdict.wait)
    if verdict.repeat or not code:
        return Attempt(Outcome.FAILED, login)
    if not twofactor.check_code(holder, code):
        throttle.failed(login, address, code, Door.PANEL)
        return Attempt(Outcome.FAILED, login)
    throttle.succeeded(login, address, pair_failures=verdict.pair_failures)
    return Attempt(
        Outcome.OK,
        login,
        mailbox=None if is_user else holder,  # type: ignore[arg-type]
        user=holder if is_user else None,  # type: ignore[arg-type]
    )
