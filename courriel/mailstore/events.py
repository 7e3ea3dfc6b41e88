"""News of Maildir changes, so that an IMAP session in IDLE hears about new mail at once
when `courriel serve` delivered it — in this process, or in one of its SMTP worker
processes, which send the news over a Unix datagram socket (`EventRelay`). Other
writers (Dovecot's LDA...) are noticed by the sessions' own directory checks.

`notify` may be called from any thread (delivery writes in worker threads); waiters
live on an event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections import defaultdict
from pathlib import Path


class MailboxEvents:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[Path, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = (
            defaultdict(set)
        )
        self._relay: tuple[socket.socket, str] | None = None  # worker -> main process

    def relay_to(self, address: str) -> None:
        """In a worker process: pass every change on to the main process."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        self._relay = (sock, address)

    def subscribe(self, maildir: Path) -> asyncio.Event:
        """An Event set whenever `maildir` changes; call `unsubscribe` when done."""
        event = asyncio.Event()
        with self._lock:
            self._waiters[maildir.resolve()].add((asyncio.get_running_loop(), event))
        return event

    def unsubscribe(self, maildir: Path, event: asyncio.Event) -> None:
        key = maildir.resolve()
        with self._lock:
            waiters = self._waiters.get(key)
            if not waiters:
                return
            for item in list(waiters):
                if item[1] is event:
                    waiters.discard(item)
            if not waiters:
                del self._waiters[key]

    def watched(self) -> bool:
        """Whether any IDLE session of this process waits for news."""
        return bool(self._waiters)

    def notify(self, maildir: Path) -> None:
        if self._relay is not None:
            sock, address = self._relay
            with contextlib.suppress(OSError):  # best effort: clients also poll
                sock.sendto(os.fsencode(maildir), address)
        if not self._waiters:  # nobody in IDLE: the common case on the delivery path
            return
        with self._lock:
            waiters = list(self._waiters.get(maildir.resolve(), ()))
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # loop closed
                continue


events = MailboxEvents()


class EventRelay:
    """In the main process: receives the worker processes' news (one datagram per
    changed Maildir) and hands it to the local IDLE sessions."""

    name = "event-relay"
    listening: list[str] = []

    def __init__(self, address: Path) -> None:
        self.address = address
        self.transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.address.unlink()
        loop = asyncio.get_running_loop()

        class Protocol(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                if events.watched():  # one datagram per delivery: nothing made for none
                    events.notify(Path(os.fsdecode(data)))

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self.address))
        os.chmod(self.address, 0o600)
        self.transport, _ = await loop.create_datagram_endpoint(Protocol, sock=sock)

    async def stop(self) -> None:
        if self.transport is not None:
            self.transport.close()
        with contextlib.suppress(FileNotFoundError):
            self.address.unlink()
