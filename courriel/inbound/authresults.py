"""The Authentication-Results header (RFC 8601) we put on top of each local copy, and
the removal of such headers that arrive claiming to be ours (section 5: a forger
could otherwise write `dkim=pass` in our name)."""

from __future__ import annotations

import re
from collections.abc import Callable

from courriel.delivery.message import header_block

_SAFE = re.compile(r"[^\x21-\x7e]|[()\\\"]")


def _comment(text: str) -> str:
    clean = _SAFE.sub(" ", text).strip()
    clean = " ".join(clean.split())[:120]
    return f" ({clean})" if clean else ""


def _value(text: str) -> str:
    """A property value: an RFC 2045 token (or an address), else a quoted string."""
    if text and re.fullmatch(r"[A-Za-z0-9.!#$%&'*+^_`{|}~@-]+", text):
        return text
    return '"' + _SAFE.sub("", text)[:200] + '"'


def header(authserv_id: str, results: list[str]) -> bytes:
    """`Authentication-Results: <authserv-id>;` and one result per folded line."""
    if not results:
        results = ["none"]
    body = ";\r\n\t".join(results)
    return f"Authentication-Results: {authserv_id};\r\n\t{body}\r\n".encode("ascii", "replace")


def result(method: str, value: str, comment: str = "", **properties: str) -> str:
    """`method=value (comment) ptype.property=value ...`; keyword `smtp_mailfrom`
    gives `smtp.mailfrom`."""
    parts = [f"{method}={value}{_comment(comment)}"]
    for key, prop in properties.items():
        if prop:
            parts.append(f"{key.replace('_', '.', 1)}={_value(prop)}")
    return " ".join(parts)


_AUTHRES_LINE = re.compile(rb"^authentication-results[ \t]*:", re.IGNORECASE)


def strip_ours(content: bytes, authserv_id: str) -> bytes:
    """`content` without the Authentication-Results headers whose authserv-id is ours."""
    if b"authentication-results" not in header_block(content).lower():
        return content
    ours = authserv_id.lower().encode("ascii", "replace")
    return drop_fields(content, lambda field: _claims(field, ours))


def drop_fields(content: bytes, unwanted: Callable[[list[bytes]], bool]) -> bytes:
    """`content` without the header fields (each a list of its folded lines) for which
    `unwanted` is true; the body is untouched."""
    block = header_block(content)
    fields: list[list[bytes]] = []
    for line in block.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    kept = [field for field in fields if not unwanted(field)]
    return b"\r\n".join(b"\r\n".join(field) for field in kept) + content[len(block) :]


def _claims(field: list[bytes], ours: bytes) -> bool:
    if not _AUTHRES_LINE.match(field[0]):
        return False
    value = b" ".join(field).split(b":", 1)[1]
    # The authserv-id is the first token, after any comments (RFC 8601 2.2).
    value = re.sub(rb"\([^)]*\)", b" ", value)
    token = value.split(b";", 1)[0].split()
    return bool(token) and token[0].lower() == ours
