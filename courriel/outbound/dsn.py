"""Delivery status notifications (RFC 3464): the bounce when mail cannot be delivered,
and the delay notice when it is still being retried after some hours.

Never sent to the null sender (a bounce of a bounce would loop); always sent from
the null sender themselves, with Auto-Submitted: auto-replied.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid

from courriel.config import get_config
from courriel.delivery.message import header_block
from courriel.outbound.spool import Entry, get_spool

log = logging.getLogger("courriel.mail")
MAX_RETURNED_HEADERS = 64 * 1024


def _status_of(reply: str, failed: bool) -> str:
    parts = reply.split()
    if len(parts) >= 2 and parts[1].count(".") == 2 and parts[1][0] in "245":
        return parts[1]
    return "5.0.0" if failed else "4.0.0"


def compose(
    sender: str,
    original: bytes,
    recipients: list[tuple[str, str, str]],  # (final recipient, original recipient, reply)
    *,
    action: str,
    arrival: float | None = None,
) -> bytes:
    """A multipart/report DSN for `sender` about `recipients` ("failed" or "delayed")."""
    config = get_config()
    hostname = config.hostname
    boundary = f"=_courriel_{secrets.token_hex(12)}"
    now = format_datetime(datetime.now(UTC))
    failed = action == "failed"
    if failed:
        subject = "Undelivered Mail Returned to Sender"
        intro = (
            f"This is the mail system at {hostname}.\r\n\r\n"
            "I'm sorry to have to inform you that your message could not be delivered "
            "to one or more recipients. The original message's headers are attached.\r\n"
        )
    else:
        lifetime = config.queue.lifetime
        subject = "Delayed Mail (still being retried)"
        intro = (
            f"This is the mail system at {hostname}.\r\n\r\n"
            "Your message could not be delivered yet to one or more recipients. "
            f"It will be retried until it is {lifetime} old; you do not need to send it "
            "again.\r\n"
        )
    lines = [f"<{final}>: {reply}" for final, _original, reply in recipients]
    human = intro + "\r\n" + "\r\n".join(lines) + "\r\n"
    status_fields = [f"Reporting-MTA: dns; {hostname}"]
    if arrival:
        status_fields.append(
            f"Arrival-Date: {format_datetime(datetime.fromtimestamp(arrival, UTC))}"
        )
    status_blocks = ["\r\n".join(status_fields)]
    for final, original_rcpt, reply in recipients:
        block = [f"Final-Recipient: rfc822; {final}"]
        if original_rcpt and original_rcpt != final:
            block.append(f"Original-Recipient: rfc822; {original_rcpt}")
        block += [
            f"Action: {action}",
            f"Status: {_status_of(reply, failed)}",
            f"Diagnostic-Code: smtp; {reply}",
            f"Last-Attempt-Date: {now}",
        ]
        status_blocks.append("\r\n".join(block))
    headers = header_block(original)[:MAX_RETURNED_HEADERS]
    text = (
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n"
        f"To: <{sender}>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {now}\r\n"
        f"Message-ID: {make_msgid(domain=hostname)}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        f'\tboundary="{boundary}"\r\n'
        "\r\n"
        "This is a MIME-encapsulated message.\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Description: Notification\r\n\r\n"
        f"{human}\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/delivery-status\r\n"
        "Content-Description: Delivery report\r\n\r\n" + "\r\n\r\n".join(status_blocks) + "\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "Content-Description: Undelivered Message Headers\r\n\r\n"
    ).encode("utf-8", "replace")
    return text + headers + f"\r\n--{boundary}--\r\n".encode()


def notify(
    entry: Entry, original: bytes, recipients: list[tuple[str, str, str]], *, action: str
) -> Entry | None:
    """Queue a DSN about a queued entry; nothing for the null sender."""
    if not entry.sender:
        log.info(
            "%s: %s for %s; sender is null, no notification",
            entry.id,
            action,
            ", ".join(r for r, _o, _m in recipients),
        )
        return None
    message = compose(entry.sender, original, recipients, action=action, arrival=entry.created)
    return get_spool().enqueue(
        "", [entry.sender], message, kind="bounce", note=f"{action} notice for {entry.id}"
    )


def bounce_now(sender: str, original: bytes, refused: list[tuple[str, str]]) -> Entry | None:
    """A bounce for recipients refused after DATA while others were accepted."""
    if not sender:
        return None
    message = compose(sender, original, [(r, r, reply) for r, reply in refused], action="failed")
    return get_spool().enqueue("", [sender], message, kind="bounce", note="refused after DATA")
