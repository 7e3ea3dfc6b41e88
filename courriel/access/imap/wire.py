"""How values are written on the IMAP wire: quoted strings, literals, NIL, lists."""

from __future__ import annotations

import time
from collections.abc import Iterable

_UNSAFE = frozenset(b'"\\\r\n\x00') | frozenset(range(0x80, 0x100))


def string(value: str | bytes | None) -> bytes:
    """A quoted string when it can be, else a literal (8-bit, CR/LF, quotes, long)."""
    if value is None:
        return b"NIL"
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if len(raw) < 1000 and not any(byte in _UNSAFE for byte in raw):
        return b'"' + raw + b'"'
    return b"{%d}\r\n%s" % (len(raw), raw)


def quoted(value: str) -> bytes:
    """A mailbox name or other short text known to be 7-bit: quote and escape."""
    return b'"' + value.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8") + b'"'


def astring(value: str) -> bytes:
    return string(value) if '"' not in value and "\\" not in value else quoted(value)


def plist(items: Iterable[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")"


def internaldate(timestamp: float) -> bytes:
    local = time.localtime(timestamp)
    return time.strftime('"%d-%b-%Y %H:%M:%S %z"', local).encode("ascii")
