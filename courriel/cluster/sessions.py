"""The IMAP and POP3 sessions signed in here, by mailbox, so that a domain's switch
to another hosting server can end them (like `doveadm kick`): a client that stayed
connected to the old server would otherwise change flags there after the last copy.
The client reconnects and is proxied to the new home."""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Protocol


class Closable(Protocol):
    writer: asyncio.StreamWriter


_sessions: dict[int, weakref.WeakSet[Closable]] = {}
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def track(mailbox_id: int, stream: Closable) -> None:
    """Called on the event loop when a mailbox signs in here."""
    global _loop
    _loop = asyncio.get_running_loop()
    with _lock:
        _sessions.setdefault(mailbox_id, weakref.WeakSet()).add(stream)


def kick(mailbox_ids: list[int]) -> int:
    """End every session of these mailboxes (from any thread); how many there were."""
    with _lock:
        streams = [s for i in mailbox_ids for s in list(_sessions.pop(i, ()))]
    loop = _loop
    if loop is None or not streams:
        return 0
    for stream in streams:
        loop.call_soon_threadsafe(stream.writer.transport.abort)
    return len(streams)
