"""News of Maildir changes, so that an IMAP session in IDLE hears about new mail at once
when `courriel serve` delivered it — in this process, or in one of its SMTP worker
processes, which send the news over a Unix datagram socket (`EventRelay`). Other
writers (Dovecot's LDA...) are noticed by the sessions' own directory checks.

`notify` may be called from any thread (delivery writes in worker threads); waiters
live on an event loop.

A worker sends its news only while the main process has a session waiting for some
(`watching_flag`: one byte the main process keeps in a shared file): a datagram for
every message woke the main process for nothing, 2 % of a one-session message's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import threading
from collections import defaultdict
from pathlib import Path

log = logging.getLogger("courriel.mail")


class MailboxEvents:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[Path, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = (
            defaultdict(set)
        )
        self._relay: tuple[socket.socket, str] | None = None  # worker -> main process
        self._watching: int | None = None  # (main process) its flag's file, written
        self._shown = False  # what the flag says
        self._main_watching: int | None = None  # (worker) the main process's flag, read

    def relay_to(self, address: str, main_pid: int) -> None:
        """In a worker process: pass changes on to the main process (`main_pid`), while
        it has a session waiting for them (its flag; without one, every change)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        self._relay = (sock, address)
        try:
            fd = os.open(watching_flag(address), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            owner = os.pread(fd, 1 + _PID_DIGITS, 0)[1:]
        except OSError:
            owner = b""
        if owner == _pid_field(main_pid):  # kept by our main process, not a stale one
            self._main_watching = fd
        else:
            os.close(fd)

    def _relaying(self) -> bool:
        """(Worker.) Whether the main process has a session waiting for news."""
        if self._main_watching is None:
            return True
        try:
            return os.pread(self._main_watching, 1, 0) != b"\0"
        except OSError:
            return True

    def keep_watching_flag(self, address: str) -> None:
        """In the main process: keep the flag its workers read (`relay_to`): one byte
        saying whether any session of this process waits for news, then this process's
        id. Written with pwrite (a full disk is an error here, never a signal); if it
        cannot be written, it is removed, and the workers relay every change."""
        path = watching_flag(address)
        fd = -1
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            content = b"\0" + _pid_field(os.getpid())
            os.pwrite(fd, content, 0)
            os.ftruncate(fd, len(content))  # (one an older process left)
            os.fchmod(fd, 0o600)
        except OSError as error:
            log.warning("cannot keep %s (%s): workers will relay every delivery", path, error)
            if fd >= 0:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(path)
            return
        with self._lock:
            self._watching, self._shown = fd, False
            self._show_watching()

    def _show_watching(self) -> None:
        """(Main process, with `_lock` held.) Set when a session subscribes, so a
        message a worker stores from then on is relayed; one stored before, the
        session finds by its own checks, as it did when a datagram came before it
        subscribed. Should the write fail, the flag says "waiting" (nothing missed)."""
        watching = bool(self._waiters)
        if self._watching is None or watching == self._shown:
            return
        try:
            os.pwrite(self._watching, b"\1" if watching else b"\0", 0)
        except OSError as error:
            log.warning("cannot update the events flag (%s): workers will relay everything", error)
            with contextlib.suppress(OSError):
                os.pwrite(self._watching, b"\1", 0)
            self._watching = None  # stays "waiting"
            return
        self._shown = watching

    def subscribe(self, maildir: Path) -> asyncio.Event:
        """An Event set whenever `maildir` changes; call `unsubscribe` when done."""
        event = asyncio.Event()
        with self._lock:
            self._waiters[maildir.resolve()].add((asyncio.get_running_loop(), event))
            self._show_watching()
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
                self._show_watching()

    def watched(self) -> bool:
        """Whether any IDLE session of this process waits for news."""
        return bool(self._waiters)

    def notify(self, maildir: Path) -> None:
        if self._relay is not None and self._relaying():
            sock, address = self._relay
            with contextlib.suppress(OSError):  # best effort: clients also poll
                sock.sendto(os.fsencode(maildir), address)
        if not self._waiters:  # nobody in IDLE: the common case on the delivery path
            return
        key = _resolved(maildir)  # (outside the lock: a walk of the path, once)
        with self._lock:
            waiters = list(self._waiters.get(key, ()))
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # loop closed
                continue


events = MailboxEvents()


@functools.lru_cache(maxsize=4096)
def _resolved(maildir: Path) -> Path:
    """A delivered-to Maildir's real path, as sessions subscribe by: `notify` runs for
    every delivery, on the way to "250", while any session waits for news. (Kept: a
    link in a Maildir's path pointed elsewhere later leaves that Maildir's sessions to
    their own checks, inotify and polling, for its news.)"""
    return maildir.resolve()


_PID_DIGITS = 10


def _pid_field(pid: int) -> bytes:
    return b"%010d" % pid


def watching_flag(address: str) -> str:
    """The main process's flag (`keep_watching_flag`), beside its events socket."""
    return address + ".watching"


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
        events.keep_watching_flag(str(self.address))  # (before the workers start)
        self.transport, _ = await loop.create_datagram_endpoint(Protocol, sock=sock)

    async def stop(self) -> None:
        if self.transport is not None:
            self.transport.close()
        with contextlib.suppress(FileNotFoundError):
            self.address.unlink()
