"""In-process news of Maildir changes, so that an IMAP session in IDLE hears about new
mail at once when this process delivered it (other writers, such as Dovecot's LDA or a
second process, are noticed by the sessions' own directory checks).

`notify` may be called from any thread (delivery writes in worker threads); waiters
live on an event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from pathlib import Path


class MailboxEvents:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[Path, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = (
            defaultdict(set)
        )

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

    def notify(self, maildir: Path) -> None:
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
