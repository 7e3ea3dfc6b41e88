"""How values are written on the IMAP wire: atoms, quoted strings, literals, NIL, lists
— chosen the way Dovecot chooses them, so that clients see the same bytes from both."""

from __future__ import annotations

import time
from collections.abc import Iterable

# ATOM-CHAR plus "]" (RFC 3501 ASTRING-CHAR): what may be sent bare as an astring.
_ATOM_SPECIALS = frozenset(b'(){ %*"\\') | frozenset(range(0x20)) | frozenset(range(0x7F, 0x100))
MAX_ESCAPES = 4  # more backslash escapes than this: a literal reads better (Dovecot's rule)


def string(value: str | bytes | None) -> bytes:
    """nstring: NIL, a quoted string when it can be (a few escaped quotes or backslashes
    allowed), else a literal (8-bit, CR/LF, many escapes)."""
    if value is None:
        return b"NIL"
    raw = value.encode("utf-8") if isinstance(value, str) else value
    escapes = raw.count(b'"') + raw.count(b"\\")
    if escapes > MAX_ESCAPES or b"\r" in raw or b"\n" in raw or not raw.isascii():
        return b"{%d}\r\n%s" % (len(raw), raw)
    if escapes:
        raw = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + raw + b'"'


def quoted(value: str) -> bytes:
    """A mailbox name or other short text known to be 7-bit: quote and escape."""
    return b'"' + value.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8") + b'"'


def astring(value: str | bytes) -> bytes:
    """An atom when the value is made of atom characters (and is not NIL), else a
    string: `INBOX`, `Projets/2024`, but `"My folder"`."""
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if raw and raw.upper() != b"NIL" and not any(byte in _ATOM_SPECIALS for byte in raw):
        return raw
    return string(raw)


def plist(items: Iterable[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")"


def internaldate(timestamp: float) -> bytes:
    local = time.localtime(timestamp)
    return time.strftime('"%d-%b-%Y %H:%M:%S %z"', local).encode("ascii")


def human_string(value: str | bytes | None) -> bytes:
    """Text for people (ENVELOPE subjects and display names), as Dovecot writes it:
    quoted as it is when it can be; otherwise a literal with runs of whitespace (and
    CR/LF) folded into one space and the ends trimmed."""
    if value is None:
        return b"NIL"
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if (
        raw.isascii()
        and b'"' not in raw
        and b"\\" not in raw
        and not any(c in raw for c in b"\r\n\t\x00")
        and b"  " not in raw
        and not raw.startswith(b" ")
        and not raw.endswith(b" ")
    ):
        return b'"' + raw + b'"'
    folded = b" ".join(raw.replace(b"\x00", b"\x80").split())
    if not folded:
        return b'""'
    return b"{%d}\r\n%s" % (len(folded), folded)


def nstring_nolf(value: str | None) -> bytes:
    """An nstring with CR and LF removed (ENVELOPE dates and message ids)."""
    if value is None:
        return b"NIL"
    return string(value.replace("\r", "").replace("\n", ""))
