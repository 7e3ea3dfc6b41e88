"""How an IMAP command ends when it does not succeed: each exception becomes one tagged
answer (or the end of the session), written by `session.ImapSession.execute`."""

from __future__ import annotations


class Bad(Exception):
    """A command that is well formed but not acceptable here: tagged BAD."""


class No(Exception):
    """A command that failed: tagged NO with an optional response code."""

    def __init__(self, message: str, code: str = "", sync: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.sync = sync  # tell the client about expunges before the NO (COPY does)


class Bye(Exception):
    """The session ends: `* BYE <message>`, then the connection closes."""


class Silent(Exception):
    """The command already answered (STARTTLS answers before switching)."""
