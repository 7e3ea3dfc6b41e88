"""What IMAP and POP3 decide alike about a client: may it send a password here (TLS
or, when configured, loopback), and the outcome of its sign-in (the one rule of
`courriel.accounts.signin`: throttling, password, disabled login). The protocol
modules only turn these outcomes into their replies.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from courriel.config import Config
from courriel.units import parse_duration

if TYPE_CHECKING:
    from courriel.accounts.models import Mailbox

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
    append_limit: int = 0  # largest IMAP APPEND; 0: message_size_limit

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
            append_limit=parse_size(access.get("append_limit") or None) or 0,
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


def _open(mailbox: Mailbox, mail_root: Path) -> Login:
    from courriel.mailstore.layout import create_maildir

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


async def authenticate(
    identifier: str, password: str, ip: str, settings: AccessSettings, door: str = "imap"
) -> Login:
    """Sign a mail client in through `courriel.accounts.signin` (throttled per login and
    client address, slowed down while the login is guessed from many addresses)."""
    from django.db import DatabaseError

    from courriel.accounts.signin import Door, Outcome, asign_in

    try:
        result = await asign_in(identifier, password, ip, Door(door))
    except DatabaseError as error:
        log.warning("login check failed: database unavailable: %s", error)
        raise AuthDenied(
            "unavailable", "The account database is unavailable; try again in a moment."
        ) from None
    if result.outcome is Outcome.THROTTLED:
        raise AuthDenied(
            "throttled", f"Too many failed logins; try again in {result.wait} seconds."
        )
    if result.outcome is Outcome.DISABLED:
        raise AuthDenied(
            "disabled",
            "Login temporarily disabled for this mailbox; mail still arrives. "
            "Ask the domain's administrator to enable it.",
        )
    if not result.ok or result.mailbox is None:
        raise AuthDenied(
            "failed",
            "Wrong login or password (with two-factor sign-in on, use an app password).",
        )
    login = await asyncio.to_thread(_open, result.mailbox, settings.mail_root)
    log.info("login %s from %s", login.login, ip)
    return login


def current_quota(mailbox_id: int) -> int | None:
    """The mailbox's quota as the panel has it now (it may change during a session)."""
    from django.db import close_old_connections

    from courriel.accounts.models import Mailbox

    close_old_connections()
    return Mailbox.objects.filter(pk=mailbox_id).values_list("quota", flat=True).first()
