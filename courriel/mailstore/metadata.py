"""Mailbox and server annotations (IMAP METADATA, RFC 5464) and the special use a client
gave a folder it created (CREATE-SPECIAL-USE, RFC 6154, kept as `/private/specialuse`),
in one small JSON file at the top of the Maildir, `courriel-metadata`:
`{"": {"/private/comment": "..."}, "Archive": {"/private/specialuse": "\\Archive"}}`
("" is the server). Written whole, atomically; folders renamed or deleted take their
entries along. Dovecot keeps these in a dictionary of its own and ignores this file.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

FILENAME = "courriel-metadata"
MAX_VALUE = 64 * 1024  # bytes of one value (METADATA MAXSIZE)
MAX_ENTRIES = 200  # entries of one mailbox (METADATA TOOMANY)
SPECIAL_USE = "/private/specialuse"


class MetadataError(ValueError):
    """A SETMETADATA the server refuses; `code` is the IMAP response code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def load(maildir: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads((maildir / FILENAME).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(mailbox): {str(k): str(v) for k, v in entries.items()}
        for mailbox, entries in data.items()
        if isinstance(entries, dict)
    }


def _save(maildir: Path, data: dict[str, dict[str, str]]) -> None:
    tmp = maildir / f".{FILENAME}.{secrets.token_hex(4)}.tmp"
    try:
        tmp.write_text(json.dumps({k: v for k, v in data.items() if v}, sort_keys=True), "utf-8")
        os.replace(tmp, maildir / FILENAME)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def get(maildir: Path, mailbox: str) -> dict[str, str]:
    return load(maildir).get(mailbox, {})


def update(maildir: Path, mailbox: str, changes: dict[str, str | None]) -> None:
    """Set (a value) or remove (None) entries of one mailbox, all or none."""
    data = load(maildir)
    entries = dict(data.get(mailbox, {}))
    for entry, value in changes.items():
        if value is None:
            entries.pop(entry, None)
        elif len(value.encode("utf-8")) > MAX_VALUE:
            raise MetadataError("Value too long.", f"METADATA MAXSIZE {MAX_VALUE}")
        else:
            entries[entry] = value
    if len(entries) > MAX_ENTRIES:
        raise MetadataError("Too many annotations on this mailbox.", "METADATA TOOMANY")
    data[mailbox] = entries
    _save(maildir, data)


def rename(maildir: Path, moved: list[tuple[str, str]]) -> None:
    data = load(maildir)
    changed = False
    for before, after in moved:
        if before in data:
            data[after] = data.pop(before)
            changed = True
    if changed:
        _save(maildir, data)


def forget(maildir: Path, mailbox: str) -> None:
    data = load(maildir)
    if data.pop(mailbox, None) is not None:
        _save(maildir, data)


def special_uses(maildir: Path) -> dict[str, str]:
    """mailbox -> the special-use attribute a client gave it."""
    return {
        mailbox: entries[SPECIAL_USE]
        for mailbox, entries in load(maildir).items()
        if entries.get(SPECIAL_USE)
    }
