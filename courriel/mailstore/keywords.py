"""`dovecot-keywords`: which IMAP keyword each lower-case letter in a Maildir file name
stands for (`0 $Forwarded` makes `a` mean $Forwarded in that folder), as Dovecot keeps it.

Maildir has room for 26 keywords per folder; past that a client gets a clear NO.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

FILENAME = "dovecot-keywords"
LETTERS = "abcdefghijklmnopqrstuvwxyz"


class TooManyKeywords(ValueError):
    pass


class Keywords:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.names: list[str | None] = []
        self._stamp: tuple[int, int] | None = None

    def load(self) -> None:
        """Re-read the file if it changed since last time (cheap stat otherwise)."""
        path = self.folder / FILENAME
        try:
            st = os.stat(path)
        except OSError:
            self.names, self._stamp = [], None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        names: list[str | None] = []
        try:
            text = path.read_text("utf-8", "replace")
        except OSError:
            return
        for line in text.splitlines():
            number, _, name = line.partition(" ")
            if number.isdigit() and name and int(number) < len(LETTERS):
                index = int(number)
                names.extend([None] * (index + 1 - len(names)))
                names[index] = name
        self.names, self._stamp = names, stamp

    def name(self, letter: str) -> str | None:
        index = ord(letter) - 97
        return self.names[index] if 0 <= index < len(self.names) else None

    def letter(self, name: str, create: bool = False) -> str | None:
        lowered = name.lower()
        for index, known in enumerate(self.names):
            if known is not None and known.lower() == lowered:
                return LETTERS[index]
        if not create:
            return None
        self.load()  # another process may have added it meanwhile
        for index, known in enumerate(self.names):
            if known is not None and known.lower() == lowered:
                return LETTERS[index]
        free = [i for i, known in enumerate(self.names) if known is None]
        index = free[0] if free else len(self.names)
        if index >= len(LETTERS):
            raise TooManyKeywords(f"at most {len(LETTERS)} keywords per folder")
        self.names.extend([None] * (index + 1 - len(self.names)))
        self.names[index] = name
        self._save()
        return LETTERS[index]

    def _save(self) -> None:
        text = "".join(f"{i} {n}\n" for i, n in enumerate(self.names) if n is not None)
        tmp = self.folder / f".{FILENAME}.{secrets.token_hex(4)}.tmp"
        try:
            tmp.write_text(text, "utf-8")
            os.replace(tmp, self.folder / FILENAME)
            st = os.stat(self.folder / FILENAME)
            self._stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
