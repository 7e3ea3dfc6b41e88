"""Automatic replies ("vacation messages") as RFC 3834 and Sieve vacation (RFC 5230)
expect, which is what makes the manual's nightmare impossible: two mailboxes with
auto-replies and no minimum interval cannot answer each other forever, because an
automatic reply is never answered.

Never answered: the null sender, MAILER-DAEMON, owner-/-request/noreply senders,
mail with Auto-Submitted other than "no", Precedence bulk/list/junk, mailing-list
headers, and mail where none of the user's addresses is in To or Cc.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from courriel.accounts.addresses import to_unicode
from courriel.accounts.models import Address, Mailbox
from courriel.delivery.message import header_values
from courriel.delivery.models import AutoreplySent

if TYPE_CHECKING:
    from courriel.delivery.router import Incoming

log = logging.getLogger("courriel.mail")

_AUTOMATED_LOCAL = re.compile(
    r"^(mailer-daemon|postmaster|listserv|majordomo|owner-.*|.*-owner|.*-request|"
    r"no-?reply|do-?not-?reply|bounces?(\+.*)?|.*-bounces?)$",
    re.IGNORECASE,
)
_LIST_HEADERS = (b"List-Id", b"List-Unsubscribe", b"List-Post", b"List-Help", b"Mailing-List")


@dataclass(frozen=True)
class Decision:
    reply: bool
    reason: str


def mailbox_addresses(mailbox: Mailbox) -> set[str]:
    """Every address of the mailbox, in every domain name it answers to."""
    found: set[str] = set()
    rows = Address.objects.filter(mailbox=mailbox).select_related("domain")
    for address in rows:
        names = [address.domain.name, *(a.name for a in address.domain.domain_aliases.all())]
        for name in names:
            found.add(f"{address.local_part}@{name}")
    return found


def decide(sender: str, content: bytes, addresses: set[str]) -> Decision:
    """May this message get an automatic reply? (interval checked separately)"""
    if not sender:
        return Decision(False, "null sender (a bounce or an automatic message)")
    local = sender.rpartition("@")[0]
    if _AUTOMATED_LOCAL.match(local):
        return Decision(False, f"automated sender {sender}")
    for value in header_values(content, b"Auto-Submitted"):
        if value.split(";")[0].strip().lower() != "no":
            return Decision(False, "Auto-Submitted message")
    for value in header_values(content, b"Precedence"):
        if value.strip().lower() in {"bulk", "list", "junk"}:
            return Decision(False, f"Precedence: {value}")
    for name in _LIST_HEADERS:
        if header_values(content, name):
            return Decision(False, "mailing-list message")
    if header_values(content, b"X-Autoreply") or header_values(content, b"X-Autorespond"):
        return Decision(False, "automatic reply")
    visible = {
        addr.lower()
        for _name, addr in getaddresses(
            header_values(content, b"To") + header_values(content, b"Cc")
        )
    }
    if not visible & {a.lower() for a in addresses}:
        return Decision(False, "none of the user's addresses is in To or Cc")
    return Decision(True, "ok")


def claim_interval(mailbox: Mailbox, sender: str, now: datetime | None = None) -> bool:
    """Record a reply to `sender` unless one was sent within the minimum interval.

    Durable and race-free: the row is locked (or created) in a transaction, so two
    messages arriving at once give one reply.
    """
    now = now or timezone.now()
    sender = sender.lower()
    interval = mailbox.autoreply_interval
    with transaction.atomic():
        row = (
            AutoreplySent.objects.select_for_update().filter(mailbox=mailbox, sender=sender).first()
        )
        if row is None:
            try:
                with transaction.atomic():
                    AutoreplySent.objects.create(mailbox=mailbox, sender=sender, last_sent=now)
                return True
            except IntegrityError:
                return False  # another delivery claimed it at the same moment
        if interval and now - row.last_sent < timedelta(seconds=interval):
            return False
        row.last_sent = now
        row.save(update_fields=["last_sent"])
        return True


def compose(mailbox: Mailbox, reached: str, sender: str, content: bytes, hostname: str) -> bytes:
    """The reply: from the address the mail was sent to, to the sender, marked
    Auto-Submitted: auto-replied, threaded with In-Reply-To/References, UTF-8 text."""
    subjects = header_values(content, b"Subject")
    subject = subjects[0] if subjects else ""
    message = EmailMessage()
    local, _, domain = reached.rpartition("@")
    display = f"{local}@{to_unicode(domain)}"
    message["From"] = f"{mailbox.real_name} <{display}>" if mailbox.real_name else display
    message["To"] = sender
    message["Subject"] = f"Auto: {subject}" if subject else "Auto: (no subject)"
    message["Date"] = format_datetime(timezone.now())
    message["Message-ID"] = make_msgid(domain=hostname)
    message["Auto-Submitted"] = "auto-replied"
    message["X-Autoreply"] = "yes"
    message["Precedence"] = "bulk"
    original_ids = header_values(content, b"Message-ID")
    if original_ids:
        message["In-Reply-To"] = original_ids[0]
        references = header_values(content, b"References")
        message["References"] = " ".join([*references, original_ids[0]])
    message.set_content(mailbox.autoreply_message, charset="utf-8", cte="quoted-printable")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def send_autoreplies(
    incoming: Incoming, targets: dict[int, str], mailboxes: dict[int, Mailbox]
) -> int:
    """Queue the automatic replies due for this message; returns how many."""
    from courriel.config import get_config
    from courriel.delivery.dkim import sign
    from courriel.outbound.spool import get_spool

    sent = 0
    for mailbox_id, reached in targets.items():
        mailbox = mailboxes.get(mailbox_id)
        if mailbox is None:
            continue
        decision = decide(incoming.sender, incoming.head, mailbox_addresses(mailbox))
        if not decision.reply:
            log.info(
                "%s: no automatic reply from %s: %s",
                incoming.queue_id,
                mailbox.login,
                decision.reason,
            )
            continue
        if not claim_interval(mailbox, incoming.sender):
            log.info(
                "%s: no automatic reply from %s: replied to %s recently",
                incoming.queue_id,
                mailbox.login,
                incoming.sender,
            )
            continue
        reply = compose(mailbox, reached, incoming.sender, incoming.head, get_config().hostname)
        domain = reached.rpartition("@")[2]
        get_spool().enqueue(
            "",
            [incoming.sender],
            sign(reply, domain),
            kind="autoreply",
            note=f"{incoming.queue_id}: automatic reply from {mailbox.login}",
        )
        sent += 1
    return sent
