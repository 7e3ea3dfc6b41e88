"""Reading the header of a stored message without parsing the whole message: where it
ends, and its fields unfolded, as raw text (undecoded, as IMAP's ENVELOPE and SEARCH
need them)."""

from __future__ import annotations

import re
from email.header import decode_header, make_header

_FIELD_RE = re.compile(rb"^([^:\s][^:\r\n]*?)[ \t]*:[ \t]*((?:.*?)(?:\r?\n[ \t].*?)*)\r?$", re.M)
_FOLD_RE = re.compile(r"\r?\n(?=[ \t])")


def header_end(data: bytes, start: int = 0, end: int | None = None) -> int:
    """Offset just after the blank line ending the header at `start` (or `end`)."""
    end = len(data) if end is None else end
    if data.startswith(b"\r\n", start):
        return start + 2
    if data.startswith(b"\n", start):
        return start + 1
    crlf = data.find(b"\r\n\r\n", start, end)
    lf = data.find(b"\n\n", start, end)
    found = [(p, n) for p, n in ((crlf, 4), (lf, 2)) if p >= 0]
    if not found:
        return end
    position, length = min(found)
    return position + length


def fields(header: bytes) -> list[tuple[str, str]]:
    """(lower-case name, unfolded raw value) of every field, in order."""
    out = []
    for match in _FIELD_RE.finditer(header):
        name = match.group(1).decode("ascii", "replace").strip().lower()
        value = _FOLD_RE.sub("", match.group(2).decode("utf-8", "replace"))
        out.append((name, value.strip()))
    return out


def field_values(data: bytes, name: str) -> list[str]:
    """Every value of one field (lower-case name) in the header of `data`, in order."""
    return [value for key, value in fields(data[: header_end(data)]) if key == name]


def decoded(value: str) -> str:
    """RFC 2047 encoded words decoded, for searching; the raw text if they are broken."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value
