"""Our SMTP/LMTP protocol objects: aiosmtpd's state machine with what it lacks.

aiosmtpd owns the wire format; decisions are in `policy.SmtpPolicy`. Added here:
- PIPELINING and ENHANCEDSTATUSCODES advertised, and an RFC 3463 code on every reply;
- a chunked DATA reader (aiosmtpd reads DATA line by line, about 13 MB/s per core),
  strict about the end marker (CRLF.CRLF only: no SMTP smuggling);
- a limit of concurrent connections per client IP;
- LMTP with one reply per recipient after DATA (RFC 2033), and Postfix's XFORWARD.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import threading
import time
import weakref
from collections import Counter, deque
from pathlib import Path
from typing import Any

import aiosmtpd.smtp as aiosmtpd_smtp
from aiosmtpd.smtp import SMTP, _AuthMechAttr, syntax

from courriel.delivery.body import Body, DataSink

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def _quiet_sanitized_log(func: Any, msg: Any, *args: Any, **kwargs: Any) -> None:
    """aiosmtpd escapes every command line for its log even when that log is off
    (we keep it at WARNING): skip the work unless the line will be written."""
    logger = getattr(func, "__self__", None)
    level = _LEVELS.get(getattr(func, "__name__", ""), logging.WARNING)
    if isinstance(logger, logging.Logger) and not logger.isEnabledFor(level):
        return
    _original_sanitized_log(func, msg, *args, **kwargs)


_original_sanitized_log = aiosmtpd_smtp.sanitized_log
aiosmtpd_smtp.sanitized_log = _quiet_sanitized_log

READ_CHUNK = 256 * 1024
CROWDED_MEMORY = 1.0  # seconds: see `alone`
_PLAIN_ADDRESS = re.compile(r"^\s*<([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+)>(.*)$")
_DOT_LINE = re.compile(rb"\r\n\.")  # found faster by `re` than by bytes.find here
_HAS_ENHANCED = re.compile(r"^\d{3}[ -]\d\.\d{1,3}\.\d{1,3}( |$)")
_DEFAULT_ENHANCED = {
    "221": "2.0.0",
    "235": "2.7.0",
    "250": "2.0.0",
    "251": "2.1.5",
    "252": "2.5.0",
    "421": "4.3.2",
    "450": "4.2.0",
    "451": "4.3.0",
    "452": "4.3.1",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "521": "5.3.2",
    "530": "5.7.0",
    "534": "5.7.9",
    "535": "5.7.8",
    "538": "5.7.11",
    "550": "5.0.0",
    "551": "5.1.6",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.0.0",
    "555": "5.5.4",
}


class ConnectionLimiter:
    """Counts open connections per client IP (thread-safe, shared by listeners)."""

    def __init__(self, per_ip: int) -> None:
        self.per_ip = per_ip
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def acquire(self, ip: str) -> bool:
        with self._lock:
            if self.per_ip and self._open[ip] >= self.per_ip:
                return False
            self._open[ip] += 1
            return True

    def release(self, ip: str) -> None:
        with self._lock:
            self._open[ip] -= 1
            if self._open[ip] <= 0:
                del self._open[ip]


_HOOK_PREFIXES = ("smtp_", "auth_", "handle_")


@functools.cache
def hook_names(cls: type) -> list[str]:
    """The `smtp_*`, `auth_*` and `handle_*` attributes of a class, worked out once."""
    return [name for name in dir(cls) if name.startswith(_HOOK_PREFIXES)]


class HookNames:
    """aiosmtpd builds its command and hook tables with `inspect.getmembers()` and
    `dir()` over the protocol and the handler: every attribute, properties included.
    Listing only the names it looks for keeps that walk short (once per listener now,
    see `SessionTemplate`) and away from anything else an attribute might compute."""

    def __dir__(self) -> list[str]:
        return hook_names(type(self))


_sessions: weakref.WeakSet[CourrielSMTP] = weakref.WeakSet()  # this process's, open
_last_crowded = -CROWDED_MEMORY  # when another session was last seen mid-transaction


def alone(me: CourrielSMTP) -> bool:
    """Whether no other session of this process is busy (`busy`), nor was in the
    last CROWDED_MEMORY seconds. Then `me` may store its message on the event loop
    itself (`accept(on_loop=True)`): waiting there for the journal's flush holds up
    nobody, and saves the trip to a thread and back, a tenth of a one-session
    message's time. Under concurrent load a process is often alone for a moment;
    blocking its loop then cost 5 % with 8 sessions, hence the memory of the last
    crowd."""
    global _last_crowded
    now = time.monotonic()
    if any(other is not me and other.busy() for other in list(_sessions)):
        _last_crowded = now
        return False
    return now - _last_crowded > CROWDED_MEMORY


class SessionTemplate:
    """A listener's protocol factory (for `loop.create_server`) that makes each
    connection's object without aiosmtpd's `SMTP.__init__`.

    That constructor works out, for every connection, what depends only on the
    protocol class, the handler and the listener's options: its command, AUTH and
    hook tables (with `inspect.getmembers()` and `inspect.signature()`), an AUTH log
    line, the event loop. 36 µs of CPU per connection, on a port where most
    connections never send a message. Here one object is built by aiosmtpd itself, at
    the first connection (on the running loop, which it takes); each connection copies
    its settings and gets what must be its own: its stream reader, the futures and
    queues of asyncio's stream protocol, and the tables of methods bound to it.
    `tests/delivery/test_session_template.py` compares the result with aiosmtpd's
    constructor, attribute by attribute."""

    # Made anew for each connection by `CourrielSMTP._from_template`.
    OWN = frozenset(
        {
            "_auth_methods",
            "_client_connected_cb",
            "_closed",
            "_drain_waiters",
            "_pipelined",
            "_smtp_methods",
            "_source_traceback",
            "_stream_reader_wr",
            "_strong_reader",
        }
    )

    def __init__(self, cls: type[CourrielSMTP], handler: Any, options: dict[str, Any]) -> None:
        self.cls, self.handler, self.options = cls, handler, options
        self.settings: dict[str, Any] = {}
        self.commands: dict[str, Any] = {}
        self.auth: dict[str, tuple[Any, bool]] = {}

    def __call__(self) -> CourrielSMTP:
        if not self.settings:
            first = self.cls(self.handler, **self.options)
            self.commands = {name: m.__func__ for name, m in first._smtp_methods.items()}
            self.auth = {
                name: (a.method.__func__ if a.is_builtin else a.method, a.is_builtin)
                for name, a in first._auth_methods.items()
            }
            self.settings = {k: v for k, v in vars(first).items() if k not in self.OWN}
        session = self.cls.__new__(self.cls)
        session._from_template(self)
        return session


class CourrielSMTP(HookNames, SMTP):
    def __init__(
        self, handler: Any, *, limiter: ConnectionLimiter, spool: Path, **kwargs: Any
    ) -> None:
        super().__init__(handler, **kwargs)
        self._spool = spool
        self._limiter = limiter
        self._counted_ip: str | None = None
        self._raw_replies = False
        self._held: list[bytes] | None = None  # reply lines kept for one write
        self._pipelined: list[bytes] = []  # 250 replies held while commands are waiting

    def _from_template(self, template: SessionTemplate) -> None:
        """What `__init__` gives, from `template` (see `SessionTemplate`)."""
        self.__dict__.update(template.settings)
        reader = asyncio.StreamReader(loop=self.loop, limit=self.line_length_limit)
        self._stream_reader_wr = weakref.ref(reader)
        self._source_traceback = reader._source_traceback  # type: ignore[attr-defined]
        self._strong_reader = reader
        self._client_connected_cb = self._cb_client_connected
        self._closed = self.loop.create_future()
        self._drain_waiters: deque[asyncio.Future[None]] = deque()
        self._smtp_methods = {name: f.__get__(self) for name, f in template.commands.items()}
        self._auth_methods = {
            name: _AuthMechAttr(f.__get__(self) if builtin else f, builtin)
            for name, (f, builtin) in template.auth.items()
        }
        self._pipelined = []
        self.command_size_limits.clear()  # as aiosmtpd does (a table of the class)

    def busy(self) -> bool:
        """Whether this session keeps its process busy (see `alone`). An SMTP client
        connects to send mail, most often one message per connection: connected is
        busy."""
        return True

    def in_transaction(self) -> bool:
        """MAIL given, and the transaction not ended (by its message's answer, RSET)."""
        envelope = self.envelope
        return envelope is not None and envelope.mail_from is not None

    # -- connection limits -------------------------------------------------------
    async def _handle_client(self) -> None:
        assert self.session is not None
        ip = str(self.session.peer[0]) if self.session.peer else "?"
        if not self._limiter.acquire(ip):
            await self.push("421 4.7.0 Too many connections from your address, try later")
            assert self.transport is not None
            self.transport.close()
            return
        self._counted_ip = ip
        # Larger stream buffer so DATA is read in big chunks (the reader pauses the
        # socket at twice this value); command lines are still checked against the
        # RFC limits by aiosmtpd itself.
        self._reader._limit = READ_CHUNK  # type: ignore[attr-defined]
        await super()._handle_client()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _sessions.add(self)
        started = self._handler_coroutine
        super().connection_made(transport)
        task = self._handler_coroutine
        if task is not None and task is not started:  # not again after STARTTLS
            task.add_done_callback(self._session_over)

    def _session_over(self, task: asyncio.Task[None]) -> None:
        """The session's task has ended (QUIT, the client gone, a refusal): nothing
        reads a command any more, so let go of what ties the protocol to itself.

        aiosmtpd's protocol is a knot of reference cycles: its tables of bound
        `smtp_*` and `auth_*` methods, its StreamWriter, its connection callback, and the
        CancelledError that ends the task (kept by the task; its traceback keeps the
        session's frames, whose `self` keeps the task). Left to the cyclic collector,
        which runs seldom at our pace (`runtime.COLLECT_YOUNG_EVERY`), several hundred
        dead sessions (reader, transport, envelope) piled up between collections and
        spread the heap; untied, a session is freed as soon as its connection is."""
        if task.cancelled():
            with contextlib.suppress(asyncio.CancelledError):
                task.result()  # asyncio hands the kept error over once, then forgets it
        self._smtp_methods = {}
        self._auth_methods = {}
        self._client_connected_cb = None
        self._writer = None  # type: ignore[assignment]

    def connection_lost(self, error: Exception | None) -> None:
        _sessions.discard(self)
        if self._counted_ip is not None:
            self._limiter.release(self._counted_ip)
            self._counted_ip = None
        super().connection_lost(error)

    # -- idle timeout --------------------------------------------------------------
    def _reset_timeout(self, duration: float | None = None) -> None:
        """aiosmtpd cancels and re-arms a timer at every command; here a command only
        notes the time, and the one armed timer re-arms itself for what is left."""
        self._idle_limit = duration or self._timeout_duration
        self._last_activity = self.loop.time()
        if self._timeout_handle is None or self._timeout_handle.cancelled():
            self._timeout_handle = self.loop.call_later(self._idle_limit, self._timeout_cb)

    def _timeout_cb(self) -> None:
        left = self._last_activity + self._idle_limit - self.loop.time()
        if left > 0.01:
            self._timeout_handle = self.loop.call_later(left, self._timeout_cb)
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(
                self._take_pipelined() + b"421 4.4.2 Idle too long, closing the connection\r\n"
            )
        super()._timeout_cb()

    # -- addresses -----------------------------------------------------------------
    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd parses MAIL/RCPT arguments with the e-mail header parser, which
        costs more than the rest of the command; plain `<local@domain>` (nearly every
        real address) is taken directly, anything else goes the library's way."""
        match = _PLAIN_ADDRESS.match(arg)
        if match:
            return match.group(1), match.group(2)
        return super()._getaddr(arg)

    # -- replies -------------------------------------------------------------------
    async def push(self, status: Any) -> None:
        """Send a reply line. A client that pipelines (RFC 2920: Postfix's LMTP client
        sends XFORWARD, MAIL, RCPT and DATA at once) gets its 250 replies together with
        the next reply, in one write: while another complete command waits in the
        buffer, a 250 is held, since the next command's reply follows without waiting
        on the client. Every other reply (354, 220 before TLS, 221, 334, errors, after
        which the connection may close) sends what is held first, in order."""
        if isinstance(status, str) and not self._raw_replies:
            status = self._with_enhanced_code(status)
        if isinstance(status, str):
            status = status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
        if self._held is not None:
            self._held.append(status)
            return
        if status.startswith(b"250") and b"\n" in self._reader._buffer:  # type: ignore[attr-defined]
            self._pipelined.append(status + b"\r\n")
            return
        await self._send(status + b"\r\n")

    def _take_pipelined(self) -> bytes:
        held, self._pipelined = b"".join(self._pipelined), []
        return held

    async def _send(self, data: bytes) -> None:
        self._writer.write(self._take_pipelined() + data)
        await self._writer.drain()

    def _with_enhanced_code(self, status: str) -> str:
        if self.session is None or not self.session.extended_smtp:
            return status
        code = status[:3]
        if code in {"220", "354", "334"} or _HAS_ENHANCED.match(status):
            return status
        enhanced = _DEFAULT_ENHANCED.get(code)
        if enhanced is None or len(status) < 4:
            return status
        return f"{status[:4]}{enhanced} {status[4:]}"

    async def smtp_EHLO(self, hostname: str) -> None:
        """The multi-line reply goes out in one write: a client that waits for the
        last line gets every line in one packet."""
        self._raw_replies = True
        self._held = []
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._raw_replies = False
            held, self._held = self._held, None
        if held:
            await self._send(b"".join(line + b"\r\n" for line in held))

    # -- DATA ----------------------------------------------------------------------
    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content, size = await self._read_data()
        limit = self.data_size_limit
        if content is None or (limit and size > limit):
            self._set_post_data_state()
            await self.push(f"552 5.3.4 Message exceeds the maximum size of {limit} bytes")
            return
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        replies = status if isinstance(status, list) else [status]
        for reply in replies:
            await self.push(reply)

    async def _read_data(self) -> tuple[bytes | Body | None, int]:
        """Read up to CRLF.CRLF; returns (unstuffed content, or None if too big; size).

        Content goes to a `DataSink` in blocks of whole lines as it arrives (a big
        message into a spool file, never all in memory), checked on the way
        (`envelope.content_check`). Bytes the client pipelined after the end marker
        are put back for the command reader. A lone LF or CR before the dot is not an
        end marker (smuggling).
        """
        reader = self._reader
        limit = self.data_size_limit
        sink = self._data_sink()
        buffer = bytearray(b"\r\n")  # as if the 354 line ended here: ".\r\n" ends an empty one
        first, searched, size = True, 0, 0
        stuffed = -1  # where in `buffer` the first line starting with a dot is, if any
        try:
            while True:
                chunk = await reader.read(READ_CHUNK)
                if not chunk:
                    raise ConnectionResetError("client closed the connection during DATA")
                self._reset_timeout()
                buffer += chunk
                # One search finds both the end marker and a dot-stuffed line: a line
                # that starts with a dot is one or the other (RFC 5321 4.5.2). Once a
                # stuffed one is known, only the end marker is looked for.
                end = -1
                if stuffed < 0:
                    match = _DOT_LINE.search(buffer, searched)
                    if match is not None:
                        at = match.start()
                        if buffer[at + 3 : at + 5] == b"\r\n":
                            end = at
                        else:
                            stuffed = at
                if stuffed >= 0 and end < 0:
                    end = buffer.find(b"\r\n.\r\n", max(searched, stuffed))
                if end >= 0:
                    leftover = bytes(buffer[end + 5 :])
                    del buffer[end + 2 :]
                    if leftover:
                        reader._buffer[0:0] = leftover  # type: ignore[attr-defined]
                    cut = len(buffer)
                else:
                    # Whole lines go on; the last line end stays, as the start of what
                    # follows (an end marker, or a dot to unstuff, may come next). Only
                    # the new bytes can hold one (a line may be longer than a read).
                    cut = buffer.rfind(b"\r\n", max(0, len(buffer) - len(chunk) - 1))
                if cut > 0:
                    skip, first = (2 if first else 0), False  # the 354 line's end
                    with memoryview(buffer) as view:  # one copy of the block, not two
                        if 0 <= stuffed < cut:
                            block = bytes(view[:cut]).replace(b"\r\n.", b"\r\n")[skip:]
                        else:
                            block = bytes(view[skip:cut])
                    del buffer[:cut]
                    # What is left is the last line end and a line in part: a dot
                    # can only start it.
                    stuffed = 0 if buffer.startswith(b"\r\n.") else -1
                    size += len(block)
                    if not (limit and size > limit):
                        sink.write(block)
                    elif sink.size:  # too big: read on to the end marker, keep nothing
                        sink.abort()
                        sink = self._data_sink()
                if end >= 0:
                    break
                searched = max(0, len(buffer) - 4)
                if limit and len(buffer) > limit + 5:  # one endless line: too big too
                    size += len(buffer) - 5
                    del buffer[:-5]
                    stuffed, searched = -1, 0  # (positions changed)
        except BaseException:
            sink.abort()
            raise
        if limit and size > limit:
            sink.abort()
            return None, size
        assert self.envelope is not None
        self.envelope.content_check = sink.check  # type: ignore[attr-defined]
        return sink.finish(), size

    def _data_sink(self) -> DataSink:
        """Where DATA goes; with the content rules checked on the way unless the
        handler takes mail its sender (the Postfix edge) has accepted already."""
        return DataSink(self._spool, checked=getattr(self.event_handler, "checks_content", True))


class CourrielLMTP(CourrielSMTP):
    """LMTP for a Postfix front end in production mode: LHLO, one reply per recipient."""

    show_smtp_greeting = False

    def busy(self) -> bool:
        """Postfix keeps LMTP connections open between messages: only one with a
        transaction under way is busy."""
        return self.in_transaction()

    @syntax("LHLO hostname")
    async def smtp_LHLO(self, arg: str) -> None:
        await super().smtp_EHLO(arg)

    async def smtp_HELO(self, arg: str) -> None:
        await self.push('500 5.5.1 Error: command "HELO" not recognized, use LHLO')

    async def smtp_EHLO(self, arg: str) -> None:
        await self.push('500 5.5.1 Error: command "EHLO" not recognized, use LHLO')

    @syntax("XFORWARD attribute=value ...")
    async def smtp_XFORWARD(self, arg: str) -> None:
        """Postfix's XFORWARD: the original client's address, name and HELO, so the
        incoming checks judge that client, not Postfix (the policy decides who may)."""
        if await self.check_helo_needed():
            return
        await self.push(await self._call_handler_hook("XFORWARD", arg or ""))
