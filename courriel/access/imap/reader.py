"""Reading one IMAP command off the wire: its lines and its literals. The content of a
message being APPENDed goes straight to a file in the Maildir's `tmp/` as it arrives
(`Spool`), never into memory, whatever its size; everything else (the command text, a
mailbox name or search string sent as a literal) is small and bounded.

A message the server will not take (no such mailbox, over APPENDLIMIT or over quota)
is refused before the client sends it when the literal is synchronising: the client
gets `NO [TRYCREATE]`/`[TOOBIG]`/`[OVERQUOTA]` instead of `+`, as from Dovecot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from courriel.access.imap.errors import Bye, No
from courriel.access.imap.parser import TAG_RE, classify_literal, literal_at_end
from courriel.access.listener import Stream
from courriel.mailstore.spool import Spool

MAX_COMMAND = 64 * 1024  # a command's text, without the literals in it
MAX_LITERAL = 64 * 1024  # a literal that is not a message (a mailbox name, a search string)
MAX_IN_MEMORY = 1024 * 1024  # text and small literals of one command together
MAX_LITERAL_UNAUTHENTICATED = 8 * 1024


@dataclass
class RawCommand:
    data: bytes
    spools: dict[int, Spool] = field(default_factory=dict)
    refusal: No | None = None  # refused once read whole (a non-synchronising literal)

    def discard(self) -> None:
        """Remove what was spooled and not stored (refused, failed, or left over)."""
        for spool in self.spools.values():
            spool.discard()


class Refused(Exception):
    """The command was answered (tagged BAD/NO) while being read: nothing to run."""

    def __init__(self, tag: str, status: str, message: str, command: bytes) -> None:
        super().__init__(message)
        self.tag = tag
        self.status = status
        self.command = command


Checker = Callable[[str, int], None]  # (mailbox, size): raise No if not acceptable


class CommandReader:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    async def read(
        self,
        timeout: float,
        maildir: Path | None,
        append_limit: int,
        check_append: Checker,
    ) -> RawCommand | None:
        """One whole command (None for an empty line). `maildir` is None before login:
        then every literal is small and kept in memory."""
        buffer = bytearray()
        spools: dict[int, Spool] = {}
        refusal: No | None = None
        text = 0
        segment = 0  # where the text after the last literal starts in `buffer`
        try:
            while True:
                line = await self.stream.readline(timeout)
                if not line:
                    raise ConnectionError("client went away")
                if not buffer and not line.strip():
                    return None
                body = line[:-2] if line.endswith(b"\r\n") else line[:-1]
                text += len(body)
                literal = literal_at_end(body)
                if literal is None:
                    buffer += body
                    if text > MAX_COMMAND:
                        raise self._refused(buffer, "BAD", "Command too long.")
                    return RawCommand(bytes(buffer), spools, refusal)
                size, nonsync = literal
                buffer += body + b"\r\n"
                mailbox = classify_literal(bytes(buffer), segment) if maildir else None
                if mailbox is None:
                    limit = MAX_LITERAL if maildir else MAX_LITERAL_UNAUTHENTICATED
                    if size > limit or text > MAX_COMMAND or len(buffer) + size > MAX_IN_MEMORY:
                        self._too_big(buffer, nonsync, limit)
                    await self._go_ahead(nonsync)
                    buffer += await self.stream.readexactly(size, timeout)
                else:
                    assert maildir is not None
                    if size > append_limit or text > MAX_COMMAND:
                        self._too_big(buffer, nonsync, append_limit)
                    problem = None
                    if refusal is None:
                        try:
                            check_append(mailbox, size)
                        except No as error:
                            problem = error
                    if problem is not None and not nonsync:
                        raise self._refused(buffer, "NO", str(problem), problem.code)
                    refusal = refusal or problem
                    await self._go_ahead(nonsync)
                    if refusal is not None:  # read and thrown away: the answer is NO
                        await self._skip(size, timeout)
                    else:
                        spool = Spool(maildir)
                        spools[len(buffer)] = spool
                        async for chunk in self.stream.chunks(size, timeout):
                            spool.write(chunk)
                segment = len(buffer)
        except BaseException:
            for spool in spools.values():
                spool.discard()
            raise

    async def _go_ahead(self, nonsync: bool) -> None:
        if not nonsync:
            self.stream.write(b"+ Ready for literal data\r\n")
            await self.stream.drain()

    async def _skip(self, size: int, timeout: float) -> None:
        async for _chunk in self.stream.chunks(size, timeout):
            pass

    def _too_big(self, buffer: bytearray, nonsync: bool, limit: int) -> None:
        if nonsync:  # already on its way: the connection cannot be kept in step
            raise Bye(f"[TOOBIG] Literal too big (at most {limit} bytes here).")
        raise self._refused(buffer, "BAD", f"Literal too big (at most {limit} bytes).", "TOOBIG")

    @staticmethod
    def _refused(buffer: bytearray, status: str, message: str, code: str = "") -> Refused:
        match = TAG_RE.match(buffer)
        tag = match.group().decode() if match else "*"
        command = bytes(buffer[len(tag) + 1 :]).split(b" ", 1)[0]
        text = f"[{code}] {message}" if code else message
        return Refused(tag, status, text, command)
