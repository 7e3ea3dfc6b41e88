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
    if crlf >= 0:
        lf = data.find(b"\n\n", start, crlf)  # a bare-LF blank line before it?
        return lf + 2 if lf >= 0 else crlf + 4
    lf = data.find(b"\n\n", start, end)
    return lf + 2 if lf >= 0 else end


def fields(header: bytes) -> list[tuple[str, str]]:
    """(lower-case name, unfolded raw value) of every field, in order."""
    out = []
    for match in _FIELD_RE.finditer(header):
        name = match.group(1).decode("ascii", "replace").strip().lower()
        value = _FOLD_RE.sub("", match.group(2).decode("utf-8", "replace"))
        out.append((name, value.strip()))
    return out


_ONE_FIELD: dict[str, re.Pattern[bytes]] = {}


def field_values(data: bytes, name: str) -> list[str]:
    """Every value of one field (lower-case name) in the header of `data`, in order
    (what `fields` gives for it, found without parsing the other fields)."""
    pattern = _ONE_FIELD.get(name)
    if pattern is None:
        pattern = _ONE_FIELD[name] = re.compile(
            rb"^" + re.escape(name.encode()) + rb"[ \t]*:[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)",
            re.M | re.I,
        )
    header = data[: header_end(data)]
    return [
        _FOLD_RE.sub("", match.group(1).decode("utf-8", "replace")).strip()
        for match in pattern.finditer(header)
    ]


def decoded(value: str) -> str:
    """RFC 2047 encoded words decoded, for searching; the raw text if they are broken."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value
