"""What IMAP and POP3 decide alike about a client: may it send a password here (TLS
or, when configured, loopback), is the password right, is the login disabled, has it
failed too often. The protocol modules only turn these outcomes into their replies.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from courriel.accounts.throttle import throttle
from courriel.config import Config
from courriel.units import parse_duration

log = logging.getLogger("courriel.access")


@dataclass(frozen=True)
class Login:
    """A signed-in mailbox, as the servers need it (no ORM object on the event loop)."""

    mailbox_id: int
    login: str
    maildir: Path
    quota: int | None  # bytes, None: unlimited
    # The hosting server holding the mailbox when it is not this one (several
    # servers, courriel.cluster): the session is handed to it (courriel.cluster.proxy).
    home: int | None = None


class AuthDenied(Exception):
    """Login refused; `reason` is one of failed, disabled, throttled, unavailable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class AccessSettings:
    plaintext_on_loopback: bool
    imap_autologout: float
    pop3_autologout: float
    max_connections_per_ip: int
    message_size_limit: int
    mail_root: Path
    hostname: str

    @classmethod
    def from_config(cls, config: Config) -> AccessSettings:
        from courriel.units import parse_size

        access = config.access
        return cls(
            plaintext_on_loopback=bool(access.plaintext_on_loopback),
            imap_autologout=parse_duration(access.imap_autologout).total_seconds(),
            pop3_autologout=parse_duration(access.pop3_autologout).total_seconds(),
            max_connections_per_ip=int(access.max_connections_per_ip),
            message_size_limit=parse_size(config.mail.message_size_limit) or 2**31,
            mail_root=config.mail_root,
            hostname=config.hostname,
        )


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.split("%")[0]).is_loopback
    except ValueError:
        return False


def plaintext_allowed(settings: AccessSettings, tls: bool, ip: str) -> bool:
    return tls or (settings.plaintext_on_loopback and is_loopback(ip))


class VerifiedCache:
    """Recently verified passwords, like Dovecot's auth_cache: mail clients log in again
    every few minutes (and mbsync opens several connections), and each Argon2 check
    costs a quarter of a second of CPU on purpose. Only a keyed hash of the password is
    kept (per-process random key), tied to the stored password hash, so a password
    change, a disabled login or a deleted mailbox takes effect at once: the database is
    still read at every login."""

    def __init__(self, ttl: float = 300.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[int, tuple[str, bytes, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8", "surrogatepass"), "sha256").digest()

    def hit(self, mailbox_id: int, password_hash: str, password: str) -> bool:
        with self._lock:
            entry = self._entries.get(mailbox_id)
        if entry is None or entry[0] != password_hash or entry[2] < time.monotonic():
            return False
        return hmac.compare_digest(entry[1], self._digest(password))

    def remember(self, mailbox_id: int, password_hash: str, password: str) -> None:
        entry = (password_hash, self._digest(password), time.monotonic() + self.ttl)
        with self._lock:
            self._entries[mailbox_id] = entry
            self._entries.move_to_end(mailbox_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


verified = VerifiedCache()


def _check(identifier: str, password: str, mail_root: Path) -> Login:
    from django.db import DatabaseError, close_old_connections

    from courriel.accounts.services.mailboxes import (
        AuthOutcome,
        AuthResult,
        authenticate,
        find_login,
    )
    from courriel.mailstore.layout import create_maildir

    close_old_connections()
    try:
        known = find_login(identifier)
        if (
            known is not None
            and not known.login_disabled
            and verified.hit(known.pk, known.password_hash, password)
        ):
            result = AuthResult(AuthOutcome.OK, known)
        else:
            result = authenticate(identifier, password)
            if result.ok and result.mailbox is not None:
                verified.remember(result.mailbox.pk, result.mailbox.password_hash, password)
    except DatabaseError as error:
        log.warning("login check failed: database unavailable: %s", error)
        raise AuthDenied(
            "unavailable", "The account database is unavailable; try again in a moment."
        ) from None
    if result.outcome is AuthOutcome.DISABLED:
        raise AuthDenied(
            "disabled",
            "Login temporarily disabled for this mailbox; mail still arrives. "
            "Ask the domain's administrator to enable it.",
        )
    if not result.ok or result.mailbox is None:
        raise AuthDenied("failed", "Wrong login or password.")
    mailbox = result.mailbox
    home = _home(mailbox.pk)
    maildir = mailbox.maildir_path(mail_root)
    if home is None and not (maildir / "cur").is_dir():
        create_maildir(maildir)
    return Login(mailbox.pk, mailbox.login, maildir, mailbox.quota, home)


def _home(mailbox_id: int) -> int | None:
    """Where the mailbox's mail is when not here (several hosting servers)."""
    from django.db import DatabaseError

    from courriel.cluster.placement import MovingNow, login_home

    try:
        return login_home(mailbox_id)
    except MovingNow:
        raise AuthDenied(
            "unavailable", "This mailbox is moving to another server; try again in a minute."
        ) from None
    except DatabaseError as error:
        log.warning("login check failed: database unavailable: %s", error)
        raise AuthDenied(
            "unavailable", "The account database is unavailable; try again in a moment."
        ) from None


async def authenticate(identifier: str, password: str, ip: str, settings: AccessSettings) -> Login:
    """Check a login off the event loop (Argon2 is slow on purpose), throttled per
    account and per client address."""
    wait = throttle.retry_after(identifier, ip)
    if wait:
        raise AuthDenied("throttled", f"Too many failed logins; try again in {wait} seconds.")
    try:
        login = await asyncio.to_thread(_check, identifier, password, settings.mail_root)
    except AuthDenied as denied:
        if denied.reason == "failed":
            throttle.failed(identifier, ip)
        raise
    throttle.succeeded(identifier)
    log.info("login %s from %s", login.login, ip)
    return login


def current_quota(mailbox_id: int) -> int | None:
    """The mailbox's quota as the panel has it now (it may change during a session)."""
    from django.db import close_old_connections

    from courriel.accounts.models import Mailbox

    close_old_connections()
    return Mailbox.objects.filter(pk=mailbox_id).values_list("quota", flat=True).first()
