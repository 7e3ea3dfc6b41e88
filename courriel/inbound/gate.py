"""The incoming checks as the SMTP and LMTP servers call them (`delivery/smtp/policy`):
who the client is (XFORWARD from a Postfix edge), SPF at MAIL FROM, the screening
after DATA, and the header-From rule of signed-in users. Kept here so the SMTP
policy only asks and applies."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any

from courriel.cachedonly import cached_or_thread
from courriel.delivery.message import header_values
from courriel.delivery.replies import Outcome
from courriel.inbound import screening as screening_module
from courriel.inbound.screening import JUNK, REFUSE, Screening, Target
from courriel.inbound.sender_policy import SpfResult, check_mailfrom
from courriel.inbound.settings import FilterSettings

if TYPE_CHECKING:
    from courriel.accounts.resolution import Resolution
    from courriel.delivery.router import Incoming

XFORWARD_ATTRIBUTES = "XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT"
_XFORWARD_NAMES = {"NAME", "ADDR", "PROTO", "HELO", "SOURCE", "PORT", "IDENT"}
_UNAVAILABLE = {"[UNAVAILABLE]", "[TEMPUNAVAIL]"}
_XTEXT = re.compile(r"\+([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Client:
    """The SMTP client whose mail is checked: its address and HELO name."""

    ip: str
    helo: str
    local: bool = False  # XFORWARD SOURCE=LOCAL: submitted on the edge host itself


# -- XFORWARD (Postfix's XFORWARD_README) ---------------------------------------------------
def may_xforward(ip: str, settings: FilterSettings) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in settings.xforward_hosts)


def _xtext(value: str) -> str:
    """RFC 3461 xtext: `+HH` stands for a byte."""
    return _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)


def take_xforward(session: Any, arg: str) -> str:
    """Record the attributes of one XFORWARD command on the session."""
    attributes: dict[str, str] = dict(getattr(session, "xforward", None) or {})
    pairs = arg.split()
    if not pairs:
        return "501 5.5.4 Syntax: XFORWARD attribute=value..."
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.upper()
        if not sep or name not in _XFORWARD_NAMES:
            return f"501 5.5.4 Bad XFORWARD attribute name: {name[:40]}"
        value = _xtext(value)
        if value.upper() in _UNAVAILABLE:
            attributes.pop(name, None)
            continue
        if name == "ADDR":
            text = value[5:] if value[:5].upper() == "IPV6:" else value
            try:
                value = str(ipaddress.ip_address(text))
            except ValueError:
                return "501 5.5.4 Bad XFORWARD ADDR value"
        attributes[name] = value[:255]
    session.xforward = attributes
    return "250 2.0.0 Ok"


def forget_xforward(session: Any) -> None:
    if getattr(session, "xforward", None):
        session.xforward = {}


def forwarded_client(session: Any) -> Client | None:
    """The original client named by XFORWARD, None when there was none."""
    attributes = getattr(session, "xforward", None) or {}
    ip = attributes.get("ADDR")
    if not ip:
        return None
    return Client(ip, attributes.get("HELO", ""), attributes.get("SOURCE", "").upper() == "LOCAL")


_EDGE_LOGIN = re.compile(rb"\(Authenticated sender: ([^()\s]{1,255})\)")


def edge_login(content: bytes) -> str | None:
    """The user who signed in at the Postfix edge's submission port, if this message
    came that way: Postfix names them in the Received header it puts on top
    (`smtpd_sasl_authenticated_header = yes`, as `courriel edge postfix` writes it).
    Only that first header counts: anything below it is the client's own text."""
    if not content.startswith(b"Received:"):
        return None
    end = 0
    while True:  # the header goes on while its lines are folded
        end = content.find(b"\r\n", end + 1)
        if end < 0 or content[end + 2 : end + 3] not in (b" ", b"\t"):
            break
    match = _EDGE_LOGIN.search(content, 0, end if end > 0 else len(content))
    return match.group(1).decode("ascii", "replace").lower() if match else None


# -- SPF for greylisting at RCPT, and what greylisting takes from it ---------------------
async def check_spf(client: Client, sender: str) -> SpfResult:
    return await cached_or_thread(check_mailfrom, client.ip, sender, client.helo)


def spf_domain(spf: SpfResult | None) -> str | None:
    """The sender's domain when SPF authorised this client for it."""
    if spf is None or not spf.passed or spf.identity != "mailfrom":
        return None
    return spf.domain


# -- signed-in users: the header From is theirs ----------------------------------------------
def foreign_header_from(login: str, content: bytes) -> str | None:
    """The first header From address that does not deliver to `login`'s mailbox, if any
    (the rule the envelope sender already follows; a message without a From is left to
    the receiving side)."""
    from courriel.accounts.resolution import resolve

    for _name, address in getaddresses(header_values(content, b"From")):
        if not address:
            continue
        if "@" not in address or login not in resolve(address).reached:
            return address[:200]
    return None


# -- after DATA ------------------------------------------------------------------------------
def targets(recipients: list[str], resolutions: list[Resolution | None]) -> list[Target]:
    found = []
    for address, resolution in zip(recipients, resolutions, strict=True):
        if resolution is None:
            found.append(Target(address, "", (), False))
        else:
            mailboxes = tuple(copy.mailbox_id for copy in resolution.copies)
            found.append(Target(address, resolution.domain, mailboxes, bool(resolution.forwards)))
    return found


async def screen(
    content: bytes,
    *,
    settings: FilterSettings,
    authserv_id: str,
    client: Client,
    sender: str,
    targets: list[Target],
    spf: SpfResult | None,
    queue_id: str,
    complete: bool = True,
) -> Screening:
    return await screening_module.screen(
        content,
        settings=settings,
        authserv_id=authserv_id,
        client_ip=client.ip,
        helo=client.helo,
        sender=sender,
        targets=targets,
        spf=spf,
        queue_id=queue_id,
        complete=complete,
    )


def apply(screening: Screening, incoming: Incoming, *, per_recipient_replies: bool) -> None:
    """Carry the decision into the message to route: the header on every copy, which
    recipients get their copies in Junk, and which are refused. One SMTP reply cannot
    refuse some recipients only: there a recipient with a mailbox gets it in Junk, and
    one that only forwards gets nothing (no bounce to a sender who may be forged)."""
    incoming.auth_header = screening.header
    for index, action in enumerate(screening.actions):
        if action == REFUSE:
            reply = screening.replies[index]
            resolution = incoming.resolutions[index]
            if not per_recipient_replies and resolution is not None and resolution.copies:
                incoming.junk.add(index)
            else:
                incoming.refused[index] = _outcome(reply)
        elif action == JUNK:
            incoming.junk.add(index)


def _outcome(reply: str) -> Outcome:
    code, enhanced, text = reply.split(" ", 2)
    return Outcome(int(code), enhanced, text)
