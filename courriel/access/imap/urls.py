"""IMAP URLs (RFC 5092) as CATENATE uses them (RFC 4469): a message or a part of one
in one of the user's own mailboxes — `/INBOX;UIDVALIDITY=7/;UID=20/;SECTION=1.2`, the
same with `imap://user@host` before it, or `;UID=20` in the selected mailbox."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from courriel.access.imap.parser import ParseError, Reader, Section, _section

_PARAM = re.compile(r";([A-Za-z]+)=([^/;]*)")


class BadUrl(ValueError):
    """A URL CATENATE cannot use (NO [BADURL url])."""


@dataclass
class ImapUrl:
    mailbox: str | None  # None: the selected mailbox
    uidvalidity: int | None
    uid: int
    section: Section | None
    partial: tuple[int, int] | None


def parse(url: str) -> ImapUrl:
    text = url
    if text.lower().startswith("imap://"):
        slash = text.find("/", 7)
        if slash < 0:
            raise BadUrl(url)
        text = text[slash:]
    mailbox = None
    if text.startswith("/"):
        end = text.find("/;", 1)
        head = text[1:] if end < 0 else text[1:end]
        text = "" if end < 0 else text[end + 1 :]
        name, _sep, rest = head.partition(";")
        mailbox = unquote(name)
        text = (";" + rest + ("/" + text if text else "")) if rest else text
    params: dict[str, str] = {}
    for piece in text.split("/"):
        if not piece:
            continue
        match = _PARAM.fullmatch(piece)
        if not match:
            raise BadUrl(url)
        params[match.group(1).upper()] = unquote(match.group(2))
    try:
        uid = int(params["UID"])
        validity = int(params["UIDVALIDITY"]) if "UIDVALIDITY" in params else None
    except (KeyError, ValueError):
        raise BadUrl(url) from None
    if mailbox == "":
        raise BadUrl(url)
    section = None
    if "SECTION" in params:
        reader = Reader(params["SECTION"].encode())
        try:
            section = _section(reader)
            reader.end()
        except ParseError:
            raise BadUrl(url) from None
    partial = None
    if "PARTIAL" in params:
        offset, _sep, length = params["PARTIAL"].partition(".")
        if not offset.isdigit() or (length and not length.isdigit()):
            raise BadUrl(url)
        partial = (int(offset), int(length) if length else 2**62)
    return ImapUrl(mailbox, validity, uid, section, partial)
