"""The TCP side shared by IMAP and POP3: one listening socket per `[section]`, implicit
TLS or STARTTLS with the platform certificate, per-address connection limits, and a
clean stop that ends every session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

log = logging.getLogger("courriel.access")
MAX_LINE = 65536 + 64
FLUSH_SIZE = 256 * 1024  # replies queued before they are handed to the socket
# A long response (FETCH of a big folder) waits for the client only when this much is
# still unsent: fewer, larger waits than asyncio's 64 KiB default.
WRITE_HIGH_WATER = 4 * 1024 * 1024
READ_CHUNK = 256 * 1024  # a big literal arrives in pieces of at most this size


class LineTooLong(Exception):
    pass


class InflatingReader:
    """The client's side after IMAP COMPRESS DEFLATE (RFC 4978): what the socket brings
    is raw deflate; this reader offers the inflated bytes as `asyncio.StreamReader`
    does to the sessions (readuntil, readexactly, read, and `_buffer` for pipelining)."""

    def __init__(self, inner: asyncio.StreamReader, limit: int) -> None:
        self.inner = inner
        self.limit = limit
        self.inflate = zlib.decompressobj(-15)
        self._buffer = bytearray()

    async def _fill(self) -> bool:
        data = await self.inner.read(65536)
        if not data:
            return False
        try:
            self._buffer += self.inflate.decompress(data)
        except zlib.error:
            raise ConnectionError("corrupt compressed data") from None
        return True

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        while separator not in self._buffer:
            if len(self._buffer) > self.limit:
                raise asyncio.LimitOverrunError("line too long", len(self._buffer))
            if not await self._fill():
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise asyncio.IncompleteReadError(partial, None)
        end = self._buffer.index(separator) + len(separator)
        line = bytes(self._buffer[:end])
        del self._buffer[:end]
        return line

    async def readexactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not await self._fill():
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise asyncio.IncompleteReadError(partial, size)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def read(self, size: int) -> bytes:
        if not self._buffer and not await self._fill():
            return b""
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


class Stream:
    """A client connection as the protocol sessions see it."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tls_context: ssl.SSLContext | None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.tls_context = tls_context  # for STARTTLS; None when TLS is already on
        peer = writer.get_extra_info("peername") or ("", 0)
        self.ip = str(peer[0])
        self.tls = writer.get_extra_info("sslcontext") is not None
        self._out: list[bytes] = []
        self._out_size = 0
        self._deflate: Any = None  # zlib compressor once COMPRESS DEFLATE is on
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self._reading: asyncio.Task[Any] | None = None  # waiting in `readline`
        self._idle_until = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._timed_out = False

    def has_line(self) -> bool:
        """Whether the client already sent another whole line (pipelining): the
        sessions then run it before writing their replies, so that a batch of commands
        costs one send instead of one per reply."""
        return b"\n" in self.reader._buffer  # type: ignore[attr-defined]

    async def readline(self, timeout: float) -> bytes:
        """One line with its end; b"" when the client went away."""
        if self.has_line():  # already here: no timer to arm and cancel
            try:
                return await self.reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                raise LineTooLong() from None
        self.flush()  # never wait for the client with replies still queued
        loop = asyncio.get_running_loop()
        self._idle_until = until = loop.time() + timeout
        if self._watchdog is None or until < self._watchdog.when():  # a shorter limit now
            if self._watchdog is not None:
                self._watchdog.cancel()
            self._watchdog = loop.call_at(until, self._check_idle)
        task = self._reading = asyncio.current_task()
        try:
            return await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as partial:
            return partial.partial if partial.partial.endswith(b"\n") else b""
        except asyncio.LimitOverrunError:
            raise LineTooLong() from None
        except asyncio.CancelledError:
            if self._timed_out and task is not None:
                self._timed_out = False
                if task.uncancel() == 0:  # our cancel, not the server stopping
                    raise TimeoutError from None
            raise
        finally:
            self._reading = None

    def _check_idle(self) -> None:
        """The idle timer of `readline`: one per connection, moved forward rather than
        armed and cancelled for every line (a command of a POP3 download or of a
        webmail costs a few microseconds less: the timer was a tenth of its CPU)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._reading is not None and now >= self._idle_until:
            self._watchdog = None
            self._timed_out = True
            self._reading.cancel()
            return
        later = self._idle_until if self._idle_until > now else now + 1
        self._watchdog = loop.call_at(later, self._check_idle)

    async def readexactly(self, size: int, timeout: float) -> bytes:
        self.flush()
        async with asyncio.timeout(timeout):
            return await self.reader.readexactly(size)

    async def chunks(self, size: int, timeout: float) -> AsyncIterator[bytes]:
        """`size` bytes from the client, in pieces of at most 256 KiB as they arrive
        (a big literal is never read whole into memory)."""
        self.flush()
        remaining = size
        while remaining:
            async with asyncio.timeout(timeout):
                chunk = await self.reader.read(min(remaining, READ_CHUNK))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(chunk)
            yield chunk

    def write(self, data: bytes) -> None:
        """Queue a reply; it is sent by `drain` (or once enough has piled up), so that
        the many small replies of a pipelined batch leave in one system call."""
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size >= FLUSH_SIZE:
            self.flush()

    def flush(self) -> None:
        if self._out:
            data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
            if self._deflate is not None:
                data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            self.writer.write(data)
            self._out.clear()
            self._out_size = 0

    @property
    def compressed(self) -> bool:
        return self._deflate is not None

    async def start_compression(self) -> None:
        """RFC 4978: from now on both directions are raw deflate (the go-ahead reply was
        written before, uncompressed)."""
        await self.drain()
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.reader = InflatingReader(self.reader, MAX_LINE)  # type: ignore[assignment]

    async def drain(self) -> None:
        self.flush()
        await self.writer.drain()

    async def settle(self) -> None:
        """After a command: send the replies, unless the client has already sent the
        next command (then they leave with its replies)."""
        if not self.has_line():
            self.flush()
        await self.pace()  # asyncio's drain only when the socket's buffer is full

    async def pace(self) -> None:
        """Within a long response: wait for the client only when the socket's buffer
        is full, without flushing every small piece."""
        if self.writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
            await self.writer.drain()

    async def start_tls(self) -> None:
        """Switch to TLS once the go-ahead reply is written (STARTTLS, STLS). Whatever
        the client sent after its command in clear text is thrown away: it must not be
        read as if it had come over TLS (command injection)."""
        assert self.tls_context is not None
        await self.drain()
        self.reader._buffer.clear()  # type: ignore[attr-defined]
        try:
            await self.writer.start_tls(self.tls_context)
        except Exception:
            raise ConnectionError("TLS negotiation failed") from None
        self.writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.tls = True
        self.tls_context = None

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        with contextlib.suppress(Exception):
            self.flush()
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5)


Handler = Callable[[Stream], Awaitable[None]]


class Listener:
    """A `courriel serve` service (see courriel.runtime)."""

    def __init__(
        self,
        name: str,
        sock: socket.socket,
        handler: Handler,
        *,
        implicit_tls: ssl.SSLContext | None,
        starttls: ssl.SSLContext | None,
        max_per_ip: int,
        scheme: str,
        busy_reply: bytes,
    ) -> None:
        self.name = name
        self.sock = sock
        self.handler = handler
        self.implicit_tls = implicit_tls
        self.starttls = starttls
        self.max_per_ip = max_per_ip
        self.busy_reply = busy_reply
        host, port = sock.getsockname()[:2]
        self.listening = [f"{name}: {scheme}://{host}:{port}"]
        self.server: asyncio.Server | None = None
        self.sessions: set[asyncio.Task[None]] = set()
        self.per_ip: Counter[str] = Counter()

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._client,
            sock=self.sock,
            ssl=self.implicit_tls,
            limit=MAX_LINE,
            ssl_handshake_timeout=30 if self.implicit_tls else None,
        )

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = writer.get_extra_info("socket")
        if raw is not None:  # asyncio only does it for sockets made with IPPROTO_TCP:
            with contextlib.suppress(OSError):  # without it, small replies wait 40 ms
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = Stream(reader, writer, self.starttls)
        task = asyncio.current_task()
        assert task is not None
        self.sessions.add(task)
        self.per_ip[stream.ip] += 1
        try:
            if self.per_ip[stream.ip] > self.max_per_ip:
                writer.write(self.busy_reply)
                with contextlib.suppress(Exception):
                    await writer.drain()
                return
            await self.handler(stream)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            pass  # the service is stopping; the client gets its connection closed
        except Exception:  # one broken session never takes the server down
            log.exception("%s session from %s failed", self.name, stream.ip)
        finally:
            self.per_ip[stream.ip] -= 1
            if self.per_ip[stream.ip] <= 0:
                del self.per_ip[stream.ip]
            self.sessions.discard(task)
            await stream.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.sessions):
            task.cancel()
        if self.sessions:
            await asyncio.wait(list(self.sessions), timeout=5)
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)
