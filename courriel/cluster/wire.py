"""What one node tells another about a copy it hands over, on the RCPT line of the
inter-node LMTP (`RCPT TO:<address> MAILBOX=<id> NAME=<file name> FOLDER=<folder>`).

The sending node has done everything a message goes through on one machine
(checks, routing, forwards, automatic replies, SRS, DKIM, trace headers): the
receiver only stores the bytes into the mailbox. The file name is chosen by the
sender and kept, so a copy handed over twice (a retry after a lost reply) is stored
once. Values are RFC 3461 xtext.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._,=\\-]{0,250}$")
_FOLDER = re.compile(r"^[A-Za-z0-9 &_+\-]([A-Za-z0-9 &_+.,/\-]{0,198}[A-Za-z0-9&_+\-])?$")


def xtext(value: str) -> str:
    return "".join(c if 33 <= ord(c) <= 126 and c not in "+=" else f"+{ord(c):02X}" for c in value)


def unxtext(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "+":
            if i + 2 >= len(value):
                raise ValueError("xtext cut short")
            out.append(chr(int(value[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


class BadCopy(ValueError):
    """RCPT parameters that do not describe a copy (the reply says which)."""


@dataclass(frozen=True)
class CopyRef:
    mailbox_id: int
    name: str
    folder: str = ""

    def params(self) -> list[str]:
        found = [f"MAILBOX={self.mailbox_id}", f"NAME={xtext(self.name)}"]
        if self.folder:
            found.append(f"FOLDER={xtext(self.folder)}")
        return found

    @classmethod
    def parse(cls, params: dict[str, str]) -> CopyRef:
        try:
            mailbox_id = int(params.get("MAILBOX", ""))
            name = unxtext(params.get("NAME", ""))
            folder = unxtext(params.get("FOLDER", ""))
        except ValueError:
            raise BadCopy("MAILBOX, NAME or FOLDER malformed") from None
        if mailbox_id <= 0:
            raise BadCopy("MAILBOX missing")
        if not _NAME.match(name) or ":" in name or "/" in name:
            raise BadCopy("NAME is not a Maildir file name")
        if folder and (not _FOLDER.match(folder) or ".." in folder or "//" in folder):
            raise BadCopy("FOLDER is not a folder name")
        unknown = set(params) - {"MAILBOX", "NAME", "FOLDER"}
        if unknown:
            raise BadCopy(f"unknown parameter {sorted(unknown)[0]}")
        return cls(mailbox_id, name, folder)


def copy_name(entry_id: str, created: float, mailbox_id: int, origin: str, size: int) -> str:
    """The Maildir file name of a copy handed over from a queue entry: the same at
    every retry, unique across nodes (the entry id is unique on its node)."""
    safe_origin = re.sub(r"[^A-Za-z0-9.-]", "-", origin) or "node"
    return f"{int(created)}.N{entry_id}Q{mailbox_id}.{safe_origin},S={size},W={size}"
