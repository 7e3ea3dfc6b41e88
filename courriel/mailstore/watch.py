"""Changes to Maildir folders made by other processes (Dovecot's LDA, a second Courriel
process, a script), noticed at once: Linux inotify on the `new/` and `cur/` directories
of the folders that IMAP sessions in IDLE or with NOTIFY watch, and the names in a
Maildir's top directory (folders created, deleted or renamed, the subscriptions file
replaced) for NOTIFY, through ctypes (no dependency).

In-process deliveries are announced by `events`; this covers everyone else. Where
inotify cannot be had (another system, the per-user watch limit reached), `watch`
returns False and IDLE falls back to checking the folder every `POLL_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import struct
from pathlib import Path

log = logging.getLogger("courriel.mailstore.watch")

POLL_SECONDS = 1.0  # without inotify: how often an idling session looks at its folder
_IN_MODIFY_NAMES = 0x00000040 | 0x00000080 | 0x00000100 | 0x00000200  # moved from/to,
_IN_ONLYDIR = 0x01000000  # created, deleted: what delivery, flag renames, expunges do
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then the name, padded)
_MESSAGES = ("new", "cur")  # a folder's messages come, go and change names here
_NAMES = ("",)  # the directory itself: the folders of a Maildir are its `.Name` entries
_Key = tuple[Path, tuple[str, ...]]


class _Inotify:
    """One inotify descriptor per event loop, shared by every watched folder."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        name = ctypes.util.find_library("c") or "libc.so.6"
        self.libc = ctypes.CDLL(name, use_errno=True)
        fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.fd = fd
        self.loop = loop
        self.folders: dict[_Key, tuple[list[int], set[asyncio.Event]]] = {}
        self.by_wd: dict[int, _Key] = {}
        loop.add_reader(fd, self._readable)

    def add(self, folder: _Key, event: asyncio.Event) -> None:
        known = self.folders.get(folder)
        if known is None:
            wds: list[int] = []
            path, subs = folder
            for sub in subs:
                wd = self.libc.inotify_add_watch(
                    self.fd, os.fsencode(path / sub), _IN_MODIFY_NAMES | _IN_ONLYDIR
                )
                if wd < 0:
                    for done in wds:
                        self.libc.inotify_rm_watch(self.fd, done)
                    raise OSError(ctypes.get_errno(), f"inotify_add_watch {path / sub}")
                wds.append(wd)
                self.by_wd[wd] = folder
            known = self.folders[folder] = (wds, set())
        known[1].add(event)

    def remove(self, folder: _Key, event: asyncio.Event) -> None:
        known = self.folders.get(folder)
        if known is None:
            return
        known[1].discard(event)
        if not known[1]:
            del self.folders[folder]
            for wd in known[0]:
                self.by_wd.pop(wd, None)
                self.libc.inotify_rm_watch(self.fd, wd)  # fails harmlessly if dir is gone

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            log.exception("inotify read failed")
            return
        offset = 0
        woken: set[_Key] = set()
        while offset + _EVENT.size <= len(data):
            wd, _mask, _cookie, length = _EVENT.unpack_from(data, offset)
            offset += _EVENT.size + length
            folder = self.by_wd.get(wd)
            if folder is not None:
                woken.add(folder)
        for folder in woken:
            for event in self.folders.get(folder, ((), set()))[1]:
                event.set()


_watchers: dict[asyncio.AbstractEventLoop, _Inotify | None] = {}


def watch(folder: Path, event: asyncio.Event) -> bool:
    """Set `event` whenever a file appears in, leaves or is renamed in the folder's
    `new/` or `cur/`; False if inotify is not available (then poll)."""
    return _watch((folder, _MESSAGES), event)


def watch_names(maildir: Path, event: asyncio.Event) -> bool:
    """Set `event` whenever an entry of the Maildir's top directory appears, leaves or
    is renamed: a folder created, deleted or renamed, `subscriptions` rewritten."""
    return _watch((maildir, _NAMES), event)


def _watch(folder: _Key, event: asyncio.Event) -> bool:
    loop = asyncio.get_running_loop()
    watcher = _watchers.get(loop, False)
    if watcher is False:
        try:
            watcher = _Inotify(loop)
        except (OSError, AttributeError) as error:
            log.warning("no inotify (%s): idling clients poll every %ss", error, POLL_SECONDS)
            watcher = None
        _watchers[loop] = watcher
    if watcher is None:
        return False
    try:
        watcher.add(folder, event)
    except OSError as error:
        log.warning("cannot watch %s (%s): polling instead", folder, error)
        return False
    return True


def unwatch(folder: Path, event: asyncio.Event) -> None:
    _unwatch((folder, _MESSAGES), event)


def unwatch_names(maildir: Path, event: asyncio.Event) -> None:
    _unwatch((maildir, _NAMES), event)


def _unwatch(folder: _Key, event: asyncio.Event) -> None:
    watcher = _watchers.get(asyncio.get_running_loop())
    if watcher:
        with contextlib.suppress(OSError):
            watcher.remove(folder, event)
