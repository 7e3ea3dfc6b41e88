"""Why mail was refused, from the SMTP reply that refused it, in a few words people
understand (the reply's enhanced status code decides; its text only where one code
has several causes)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

REASONS = {
    "unknown_recipient": _("Unknown recipient"),
    "relay_denied": _("Not for a domain hosted here (relaying refused)"),
    "mailbox_full": _("Mailbox full, or message over its quota"),
    "spam": _("Spam"),
    "authentication": _("Sender authentication failed (SPF, DKIM, DMARC)"),
    "content": _("Malformed message"),
    "loop": _("Mail loop"),
    "invalid": _("Bad address or command"),
    "too_many_recipients": _("Too many recipients"),
    "temporary": _("Refused for now (the sender retries)"),
    "other": _("Other"),
}

_BY_CODE = {
    "5.1.1": "unknown_recipient",
    "5.1.3": "invalid",
    "4.2.2": "mailbox_full",
    "5.2.2": "mailbox_full",
    "5.4.6": "loop",
    "4.5.3": "too_many_recipients",
}


def greylisting(reply: str) -> bool:
    return reply.startswith("451") and "Greylisting" in reply


def reason_of(reply: str) -> str:
    """`550 5.1.1 No such user here` -> "unknown_recipient"."""
    enhanced = reply[4:9]
    if "Relay access denied" in reply:
        return "relay_denied"
    if enhanced in _BY_CODE:
        return _BY_CODE[enhanced]
    if enhanced.startswith(("5.5.", "5.1.")):
        return "invalid"
    if enhanced.startswith("5.6."):
        return "content"
    if reply.startswith("5") and "spam" in reply.lower():
        return "spam"
    if reply.startswith("5") and ("DMARC" in reply or "is hosted here" in reply):
        return "authentication"
    if reply.startswith("4"):
        return "temporary"
    return "other"
