"""An in-memory index of each Maildir folder, shared by every IMAP and POP3 session of
the process, so that a command costs what it returns rather than what the folder holds.

The index is built once from the directory listing and `dovecot-uidlist`, then kept
up to date: our own changes (flags, appends, copies, expunges) update it directly, and
changes by anyone else (delivery, Dovecot, another process) are noticed when the
`new/` or `cur/` directory's modification time moves, which costs two `stat` calls per
command when nothing changed. A change log numbered by a per-folder sequence
(`modseq`) lets each session learn what changed since it last looked (new messages,
expunges, flag changes made by others) without comparing whole folders.

Flags live in the file names (`:2,FRS` plus keyword letters, see `keywords`), exactly
as Dovecot keeps them, and nothing else is written besides `dovecot-uidlist`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import ctypes
import heapq
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from courriel.mailstore import modseq as modseqs
from courriel.mailstore import quota, uidlist, uidvalidity
from courriel.mailstore.headers import field_values, header_end
from courriel.mailstore.keywords import Keywords
from courriel.mailstore.maildir import fsync_dir, unique_name
from courriel.mailstore.message_file import MessageFile, open_crlf

log = logging.getLogger("courriel.mailstore")

SYSTEM_FLAGS = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}
FLAG_LETTERS = {name.lower(): letter for letter, name in SYSTEM_FLAGS.items()}
_SYSTEM_ORDER = "RFTSD"  # Answered, Flagged, Deleted, Seen, Draft: IMAP order
FLAG_CHANGE, EXPUNGE = 0, 1
LOG_LIMIT = 200_000
RACY_NS = 100_000_000  # directory times this close to "now" may hide a second change
BIG = 1024 * 1024  # a message larger than this is never read whole (see `source`)
_SIZE_RE = re.compile(r",([SW])=(\d+)")
T = TypeVar("T")


class FolderGone(FileNotFoundError):
    """The folder was deleted (by this or another client) while in use."""


class Message:
    """One message: its UID, its Maildir base name, where it is, its flag letters, and
    the mod-sequence of its last change (CONDSTORE)."""

    __slots__ = ("base", "crlf", "info", "modseq", "mtime", "size", "sub", "uid")

    def __init__(self, uid: int, base: str, sub: str, info: str, modseq: int) -> None:
        self.uid = uid
        self.base = base
        self.sub = sub
        self.info = info
        self.modseq = modseq
        sizes = dict(_SIZE_RE.findall(base))
        physical = sizes.get("S")
        virtual = sizes.get("W", physical)
        self.size = int(virtual) if virtual else -1  # -1: read from the file
        # Files written by us (and most others) use CRLF already: S == W.
        self.crlf = physical is not None and physical == virtual
        self.mtime: float | None = None

    @property
    def filename(self) -> str:
        return self.base if self.sub == "new" else f"{self.base}:2,{self.info}"


def split_name(name: str) -> tuple[str, str]:
    """('base', 'flag letters') of a Maildir file name."""
    base, sep, info = name.partition(":")
    if sep and info.startswith("2,"):
        return base, "".join(sorted(set(info[2:])))
    return base, ""


_MICROSECONDS = re.compile(r"M(\d+)")


def arrival_order(base: str) -> tuple[int, int, str]:
    """New files get their UIDs in the order they arrived: by the seconds and the
    microseconds of their Maildir names, compared as numbers ("M70988" before
    "M105000" in the same second, which a sort of the names puts the other way)."""
    head, _, rest = base.partition(".")
    micro = _MICROSECONDS.match(rest)
    return (int(head) if head.isdigit() else 0, int(micro.group(1)) if micro else 0, base)


class FolderIndex:
    def __init__(self, path: Path, maildir: Path) -> None:
        self.path = path
        self.dir = str(path)
        self.maildir = maildir
        self.uids: list[int] = []
        self.by_uid: dict[int, Message] = {}
        self.in_new: set[int] = set()
        # \Recent as Dovecot keeps it: messages from this UID on are recent for the next
        # session that selects the folder (read-write); a message that appears in cur/
        # without us putting it there moves the mark past it.
        self.first_recent_uid = 1
        self.keywords = Keywords(path)
        self.modseq = 1  # HIGHESTMODSEQ, kept in `courriel-modseq` (see `modseq`)
        # (modseq, uid, kind, origin, message): sessions that have not heard of an
        # expunge yet still answer about the message from its last known state.
        self.log: list[tuple[int, int, int, int, Message]] = []
        self._modseqs: modseqs.ModseqFile | None = None
        self._pending: list[tuple[int, int]] = []  # (uid, modseq) not written yet
        self._depth = 0  # nesting of `changes` blocks
        self._lock: tuple[contextlib.ExitStack, int] | None = None  # on courriel-modseq
        self._touched = False  # cur/ changed by us in this batch
        self._owning = False  # inside `own_change`
        self.header_cache: dict[object, dict[int, object]] = {}
        # Results worked out from immutable message content (THREAD of a set of UIDs),
        # the last few kept.
        self.results: OrderedDict[object, object] = OrderedDict()
        self.users = 0
        self.claiming = False  # `claim_later` is moving files out of new/
        self._stamp: tuple[int, int] | None = None
        self._uidlist: uidlist.UidList | None = None
        self._stale = 0  # records in dovecot-uidlist for files that are gone
        self.refresh()
        self.log_start = self.modseq + 1

    # --- reading ---------------------------------------------------------------------------

    @property
    def uidvalidity(self) -> int:
        assert self._uidlist is not None
        return self._uidlist.uidvalidity

    @property
    def uidnext(self) -> int:
        assert self._uidlist is not None
        return max(self._uidlist.next_uid, (self.uids[-1] + 1) if self.uids else 1)

    def __len__(self) -> int:
        return len(self.uids)

    def file(self, message: Message) -> str:
        """Path of the message's file (a str: pathlib costs more than the read itself)."""
        if message.sub == "new":
            return f"{self.dir}/new/{message.base}"
        return f"{self.dir}/cur/{message.base}:2,{message.info}"

    def flags(self, message: Message) -> list[str]:
        return self.flag_names(message.info)

    def flag_names(self, info: str, recent: bool = False) -> list[str]:
        """IMAP flag names of the flag letters of a file name, in Dovecot's order:
        system flags, then \\Recent, then keywords."""
        names = [SYSTEM_FLAGS[letter] for letter in _SYSTEM_ORDER if letter in info]
        if recent:
            names.append("\\Recent")
        for letter in info:
            if "a" <= letter <= "z":
                name = self.keywords.name(letter)
                if name:
                    names.append(name)
        return names

    def letters(self, names: Iterable[str], create: bool) -> str:
        """Flag letters for IMAP flag names (keywords get a letter when `create`)."""
        out = set()
        for name in names:
            letter = FLAG_LETTERS.get(name.lower())
            if letter is None and not name.startswith("\\"):
                letter = self.keywords.letter(name, create)
            if letter:
                out.add(letter)
        return "".join(sorted(out))

    def read(self, message: Message) -> bytes | None:
        """The message as served: its bytes, CRLF line ends (converted only for files
        written by others with bare LF); None if another process removed it."""
        data = self._read_bytes(message)
        if data is None:
            return None
        if not message.crlf:
            if data.count(b"\n") != data.count(b"\r\n"):
                data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
            else:
                message.crlf = True  # the file itself has CRLF: read as it is from now on
        message.size = len(data)
        return data

    def source(self, message: Message) -> bytes | MessageFile | None:
        """The message for FETCH/RETR: its bytes when it is small, else its file read
        piece by piece (a `MessageFile`, to close); None if it is gone."""
        if 0 <= message.size <= BIG:
            return self.read(message)
        for _attempt in range(2):
            opened = open_crlf(self.file(message), self.path / "tmp", message.crlf)
            if opened is not None:
                if message.size < 0:
                    message.size = len(opened)
                if len(opened) <= BIG:  # small after all (no size in its name)
                    with opened:
                        return opened[:]
                return opened
            self.refresh()  # renamed by another client, or expunged
            if message.uid not in self.by_uid:
                return None
        return None

    def _read_bytes(self, message: Message) -> bytes | None:
        fd = self._open(message)
        if fd is None:
            return None
        try:
            # One read of the size the name gives (os.read: the `open` machinery costs
            # more than the read of a small message); one byte more shows a longer file.
            expected = message.size if message.crlf else os.fstat(fd).st_size
            data = os.read(fd, expected + 1)
            if len(data) <= expected:
                return data
            chunks = [data]
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def _open(self, message: Message) -> int | None:
        """A file descriptor on the message's file; None if another process expunged
        it (a rename by another client is followed)."""
        for _attempt in range(2):
            try:
                return os.open(self.file(message), os.O_RDONLY)
            except FileNotFoundError:
                self.refresh()  # renamed by another client, or expunged
                if message.uid not in self.by_uid:
                    return None
        return None

    def size(self, message: Message) -> int:
        if message.size < 0:
            self.read(message)
        return max(message.size, 0)

    def internaldate(self, message: Message) -> float:
        if message.mtime is None:
            try:
                message.mtime = os.stat(self.file(message)).st_mtime
            except OSError:
                message.mtime = time.time()
        return message.mtime

    def header_summary(self, message: Message, key: object, compute: Callable[[bytes], T]) -> T:
        """`compute(header)` for a message, cached per folder under `key` (the header
        is read once whatever is derived from it: THREAD's ids, ENVELOPE...)."""
        cache = self.header_cache.get(key)
        if cache is None:
            cache = self.header_cache[key] = {}  # type: ignore[index]
        value = cache.get(message.uid)
        if value is None:
            value = cache[message.uid] = compute(self.read_header(message))
        return value  # type: ignore[return-value]

    def header_summaries(
        self, messages: list[Message], key: object, compute: Callable[[bytes], T]
    ) -> list[T]:
        """`header_summary` of many messages at once: the first SORT or THREAD of a big
        folder reads every header, and this loop does it with no call per message
        beyond the system calls and `compute` (a header longer than one read, or a
        file renamed meanwhile, takes the general path)."""
        cache = self.header_cache.get(key)
        if cache is None:
            cache = self.header_cache[key] = {}  # type: ignore[index]
        values: list[T] = []
        append = values.append
        cur, new = self.dir + "/cur/", self.dir + "/new/"
        open_, read, close = os.open, os.read, os.close
        for message in messages:
            value = cache.get(message.uid)
            if value is None:
                if message.sub == "new":
                    path = new + message.base
                else:
                    path = f"{cur}{message.base}:2,{message.info}"
                try:
                    fd = open_(path, os.O_RDONLY)
                except FileNotFoundError:
                    data = self.read_header(message)
                else:
                    try:
                        data = read(fd, 4096)
                    finally:
                        close(fd)
                    if len(data) == 4096 and header_end(data) == len(data):
                        data = self.read_header(message)
                value = cache[message.uid] = compute(data)
            append(value)  # type: ignore[arg-type]
        return values

    def remember(self, key: object, value: object, keep: int = 4) -> None:
        self.results[key] = value
        self.results.move_to_end(key)
        while len(self.results) > keep:
            self.results.popitem(last=False)

    def header_text(
        self,
        message: Message,
        field: str,
        transform: Callable[[list[str]], str] | None = None,
    ) -> str:
        """A header field of a message, as `transform` makes it of every occurrence of
        the field (by default: the first one, raw), cached per folder and transform, so
        that searching or sorting on a field again reads no file. Only fields clients
        search or sort on are cached: 50,000 subjects cost a few megabytes."""
        key = (field, transform)
        cache = self.header_cache.get(key)
        if cache is None:
            cache = self.header_cache[key] = {}
        value = cache.get(message.uid)
        if value is None:
            values = field_values(self.read_header(message), field)
            first = values[0] if values else ""
            value = transform(values) if transform is not None else first
            cache[message.uid] = value
        return value

    def read_header(self, message: Message) -> bytes:
        """The header of a message, without reading a big body."""
        fd = self._open(message)
        if fd is None:
            return b""
        try:
            data = os.read(fd, 4096)  # most headers fit; a longer one is read on
            while len(data) % 4096 == 0 and data and header_end(data) == len(data):
                more = os.read(fd, 65536)
                if not more:
                    break
                data += more
            return data
        finally:
            os.close(fd)

    # --- watching the directory ------------------------------------------------------------

    def _stats(self) -> tuple[int, int]:
        try:
            return (os.stat(self.dir + "/new").st_mtime_ns, os.stat(self.dir + "/cur").st_mtime_ns)
        except FileNotFoundError:
            raise FolderGone(str(self.path)) from None

    def refresh(self) -> None:
        """Bring the index up to date with the disk (two stats when nothing changed;
        only `new/` is listed when only `new/` changed, as after a delivery)."""
        if self._stamp is None:
            self._rescan()
            return
        stamp = self._stats()
        if stamp != self._stamp:
            self._rescan(only_new=stamp[1] == self._stamp[1])

    def _listing(self, sub: str, found: dict[str, tuple[str, str]]) -> None:
        try:
            entries = os.scandir(self.path / sub)
        except FileNotFoundError:
            raise FolderGone(str(self.path)) from None
        with entries:
            for entry in entries:
                name = entry.name
                if name[0] == ".":
                    continue
                base, info = split_name(name)
                found[base] = (sub, info)

    def _rescan(self, only_new: bool = False) -> None:
        """List the folder and apply what others changed. With `only_new`, `cur/` is
        known not to have changed since it was last listed, so only `new/` is read."""
        stamp = self._stats()
        now = time.time_ns()
        found: dict[str, tuple[str, str]] = {}
        self._listing("new", found)  # new/ first: a file moving to cur/ meanwhile is
        if only_new:  # then seen in cur/ (or in both), never in neither
            known = {self.by_uid[uid].base: self.by_uid[uid] for uid in self.in_new}
            if any(base not in found for base in known):
                return self._rescan()  # gone from new/: moved or expunged, look at cur/
        else:
            self._listing("cur", found)
            known = {m.base: m for m in self.by_uid.values()}
        missing = [m for base, m in known.items() if base not in found]
        if missing:
            self._listing("cur", found)  # a rename during the listing: look again
            missing = [m for m in missing if m.base not in found]
        with self.changes():
            for message in missing:
                self._forget(message, 0)
            fresh = []
            for base, (sub, info) in found.items():
                message = known.get(base)
                if message is None:
                    fresh.append(base)
                    continue
                if message.sub != sub:
                    message.sub = sub
                    if sub == "cur":
                        self.in_new.discard(message.uid)
                if message.info != info:
                    message.info = info
                    self._logged(message, FLAG_CHANGE, 0)
            del known
            self.keywords.load()
            if fresh or self._uidlist is None:
                self._register(fresh, found, stamp)
        racy = now - max(stamp) < RACY_NS
        self._stamp = None if racy else stamp
        if len(found) > 10_000:
            del found
            give_back_memory()

    def _register(
        self,
        bases: list[str],
        where: dict[str, tuple[str, str]],
        stamp: tuple[int, int],
        ours: bool = False,
    ) -> list[int]:
        """Give UIDs to files seen for the first time (from dovecot-uidlist if it knows
        them, else the next free ones, written back) and add them to the index, with a
        new mod-sequence (or, when the index is first built, the one kept on disk)."""
        with uidlist.lock(self.path):
            current = self._uidlist
            if current is not None:
                current = uidlist.refresh(self.path, current)
            if current is None:
                current = uidlist.read(self.path)
                if current is None:
                    if self._uidlist is not None:  # file removed: keep what clients know
                        current = uidlist.new(self._uidlist.uidvalidity)
                        current.next_uid = self._uidlist.next_uid
                        current.records = {m.base: m.uid for m in self.by_uid.values()}
                    else:  # a new folder: a value never used in this Maildir
                        current = uidlist.new(uidvalidity.next_value(self.maildir))
                    uidlist.write(self.path, current)
                    current.records = {}
            self._uidlist = current
            highest = self.uids[-1] if self.uids else 0
            known: list[tuple[int, str]] = []
            unknown: list[str] = []
            for base in bases:
                uid = current.records.get(base)
                if uid is not None and uid > highest and uid not in self.by_uid:
                    known.append((uid, base))
                else:
                    unknown.append(base)
            unknown.sort(key=arrival_order)
            new_uids = uidlist.append(self.path, current, unknown) if unknown else []
        added = [*known, *zip(new_uids, unknown, strict=True)]
        added.sort()
        records = current.records
        before = len(records)
        stored = self._stored_modseqs(stamp)
        fresh = 0
        for uid, base in added:
            records.pop(base, None)  # the index knows it now: one copy of each name
            sub, info = where[base]
            value = stored(uid) if stored is not None else None
            if value is None:
                fresh = fresh or self._next_modseq()
                value = fresh
            message = Message(uid, base, sub, info, value)
            self.by_uid[uid] = message
            self.uids.append(uid)
            if sub == "new":
                self.in_new.add(uid)
            elif not ours and uid >= self.first_recent_uid:
                self.first_recent_uid = uid + 1  # put in cur/ by someone else: not recent
            if value == fresh:
                self._pending.append((uid, value))
        if len(records) < before // 4:
            current.records = dict(records)  # a dict does not shrink by itself
        return [uid for uid, _ in added]

    def _stored_modseqs(self, stamp: tuple[int, int]) -> Callable[[int], int | None] | None:
        """When the index is first built: the mod-sequence kept on disk for a UID (None
        for a message that arrived, or a folder that changed, while no index of ours
        watched it: those get a new one)."""
        if self._modseqs is not None:
            return None
        state = modseqs.read(self.path)
        if state is None or state.uidvalidity != self.uidvalidity:
            base = max(modseqs.clock_base(), state.highest + 1 if state else 0)
            self._modseqs = modseqs.ModseqFile(self.uidvalidity, base, base)
            self.modseq = base
            return lambda uid: base
        self._modseqs = state
        self.modseq = max(self.modseq, state.highest)
        try:
            written = os.stat(self.path / modseqs.FILENAME).st_mtime_ns
        except OSError:
            written = 0
        if stamp[1] > written:  # flags renamed in cur/ by others while we were away
            state.records.clear()
            return None
        records, base, covered = state.records, state.base, state.covered
        state.records = {}  # ours now: taking the lock later must not empty it

        def stored(uid: int) -> int | None:
            value = records.pop(uid, None)
            if value is None and uid <= covered:
                return base
            return value

        return stored

    @contextlib.contextmanager
    def own_change(self) -> Iterator[None]:
        """Our own change moves the directory times; adopt them if nobody else changed
        the folder since we last looked, so our change does not cost a rescan."""
        if self._owning:  # nested (APPEND adopting the file it wrote)
            yield
            return
        clean = self._stats() == self._stamp
        self._owning = True
        try:
            with self.changes():
                self._touched = True
                try:
                    yield
                finally:
                    if clean:  # before `changes` saves: the file then says "seen up to here"
                        with contextlib.suppress(FolderGone):
                            self._stamp = self._stats()
        finally:
            self._owning = False

    # --- change log and mod-sequences ------------------------------------------------------

    @contextlib.contextmanager
    def changes(self) -> Iterator[None]:
        """A batch of changes (a command): the mod-sequences it gives are written to
        `courriel-modseq` once, at the end, under the file's lock (taken at the first
        new mod-sequence, so that a batch that changes nothing costs nothing)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._save_modseqs()

    def _next_modseq(self) -> int:
        assert self._depth > 0, "mod-sequences are given inside `changes`"
        if self._lock is None:
            if self._modseqs is None:  # an index being built gives no new values
                self.modseq += 1
                return self.modseq
            stack = contextlib.ExitStack()
            self._lock = (stack, stack.enter_context(modseqs.locked(self.path, self._modseqs)))
            self._modseqs.records.clear()  # others' values: only their maximum matters
            self.modseq = max(self.modseq, self._modseqs.highest)
        self.modseq += 1
        return self.modseq

    def _save_modseqs(self) -> None:
        state, lock, pending = self._modseqs, self._lock, self._pending
        touched, self._touched = self._touched, False
        if state is None:
            return
        if lock is None and (pending or state.inode == 0):
            stack = contextlib.ExitStack()
            lock = (stack, stack.enter_context(modseqs.locked(self.path, state)))
        self._lock, self._pending = None, []
        if lock is None:
            if touched:  # cur/ changed (new mail claimed): say we saw it
                self._mark_seen()
            return
        stack, fd = lock
        with stack:
            state.highest = max(state.highest, self.modseq)
            self.modseq = state.highest
            if state.inode == 0 or state.lines > max(1000, 2 * len(self.uids)):
                state.base = min((m.modseq for m in self.by_uid.values()), default=self.modseq)
                state.covered = self.uids[-1] if self.uids else 0
                modseqs.write(self.path, state, {m.uid: m.modseq for m in self.by_uid.values()})
            else:
                modseqs.append(fd, state, pending)
            self._mark_seen()

    def _mark_seen(self) -> None:
        """The file's time is the time of `cur/` this index has seen, not the time of
        the write: a flag renamed by another program just before we wrote it still
        leaves `cur/` newer than the file, and the next index built from the disk
        resynchronises (see `_stored_modseqs`)."""
        seen = self._stamp[1] if self._stamp is not None else None
        with contextlib.suppress(OSError):
            if seen:
                os.utime(self.path / modseqs.FILENAME, ns=(seen, seen))
            else:
                os.utime(self.path / modseqs.FILENAME)

    def _logged(self, message: Message, kind: int, origin: int) -> None:
        message.modseq = value = self._next_modseq()
        self._pending.append((message.uid, value))
        self.log.append((value, message.uid, kind, origin, message))
        if len(self.log) > LOG_LIMIT:
            del self.log[: LOG_LIMIT // 2]
            self.log_start = self.log[0][0]

    def changes_since(self, modseq: int) -> list[tuple[int, int, int, int, Message]] | None:
        """Log entries after `modseq`; None if the log no longer reaches back that far."""
        if modseq < self.log_start - 1:
            return None
        start = bisect.bisect_right(self.log, (modseq, 1 << 62))
        return self.log[start:]

    def _forget(self, message: Message, origin: int) -> None:
        del self.by_uid[message.uid]
        self.in_new.discard(message.uid)
        position = bisect.bisect_left(self.uids, message.uid)
        if position < len(self.uids) and self.uids[position] == message.uid:
            del self.uids[position]
        for cache in self.header_cache.values():
            cache.pop(message.uid, None)
        self._stale += 1
        self._logged(message, EXPUNGE, origin)

    # --- our own changes -------------------------------------------------------------------

    def recent_uids(self) -> list[int]:
        """The messages that are \\Recent for the next session selecting the folder."""
        return self.uids[bisect.bisect_left(self.uids, self.first_recent_uid) :]

    def claim_recent(self, limit: int | None = None) -> list[int]:
        """SELECT (read-write): the recent messages become this session's (no other
        session sees them as recent, RFC 3501), and delivered files move to cur/ (all,
        or the first `limit`: see `claim_new`)."""
        recent = self.recent_uids()
        self.claim_new(limit)
        if self.uids:
            self.first_recent_uid = max(self.first_recent_uid, self.uids[-1] + 1)
        return recent

    def claim_new(self, limit: int | None = None) -> list[int]:
        """Move messages out of new/ into cur/ (their \\Recent state does not change):
        all of them, or the `limit` oldest, the others staying in new/ (where every
        reader of the Maildir finds them too) for the next call."""
        if not self.in_new:
            return []
        chosen = sorted(self.in_new) if limit is None else heapq.nsmallest(limit, self.in_new)
        claimed = []
        with self.own_change():
            for uid in chosen:
                self.in_new.discard(uid)
                message = self.by_uid[uid]
                try:
                    os.rename(f"{self.dir}/new/{message.base}", f"{self.dir}/cur/{message.base}:2,")
                except FileNotFoundError:
                    continue
                message.sub = "cur"
                claimed.append(uid)
        return claimed

    def set_info(self, message: Message, info: str, origin: int) -> bool:
        """Rename the file to carry new flags; False if it is gone."""
        if message.info == info and message.sub == "cur":
            return True
        target = f"{self.dir}/cur/{message.base}:2,{info}"
        with self.own_change():
            for _attempt in range(2):
                try:
                    os.rename(self.file(message), target)
                    break
                except FileNotFoundError:
                    self.refresh()
                    if message.uid not in self.by_uid:
                        return False
            else:
                return False
            self.in_new.discard(message.uid)
            message.sub = "cur"
            if message.info != info:
                message.info = info
                self._logged(message, FLAG_CHANGE, origin)
        return True

    def expunge(self, messages: list[Message], origin: int) -> list[int]:
        """Delete messages (files, then index, then quota); returns their UIDs."""
        gone = []
        size = 0
        with self.own_change():
            for message in messages:
                try:
                    os.unlink(self.file(message))
                except FileNotFoundError:
                    self.refresh()
                    if message.uid not in self.by_uid:
                        continue  # someone else expunged it; the log says so already
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.file(message))
                size += self.size(message)
                self._forget(message, origin)
                gone.append(message.uid)
        if gone:
            quota.add(self.maildir, -size, -len(gone))
            self._compact()
        return gone

    def _compact(self) -> None:
        """Drop records of expunged messages from dovecot-uidlist now and then."""
        if self._stale < 1000 or self._stale < len(self.uids) // 2:
            return
        with contextlib.suppress(OSError), uidlist.lock(self.path):
            current = uidlist.refresh(self.path, self._uidlist) if self._uidlist else None
            if current is None:
                return
            highest = self.uids[-1] if self.uids else 0
            unseen = {b: u for b, u in current.records.items() if u > highest}
            current.records = {m.base: m.uid for m in self.by_uid.values()} | unseen
            uidlist.write(self.path, current)
            current.records = unseen
            self._uidlist = current
            self._stale = 0

    def add_file(self, source: str, info: str, *, link: bool, mtime: float | None = None) -> int:
        """Put a file into this folder (hard link for COPY, rename for MOVE) under a new
        name, and return its UID at once (for UIDPLUS)."""
        sizes = _SIZE_RE.findall(os.path.basename(source).split(":")[0])
        base = unique_name(0).split(",")[0] + "".join(f",{k}={v}" for k, v in sizes)
        if not sizes:
            base = unique_name(os.stat(source).st_size)
        target = self.path / "cur" / f"{base}:2,{info}"
        with self.own_change():
            if link:
                tmp = self.path / "tmp" / base
                os.link(source, tmp)
                os.rename(tmp, target)
            else:
                os.rename(source, target)
            if mtime is not None:
                os.utime(target, (mtime, mtime))
            fsync_dir(target.parent)
            return self._register([base], {base: ("cur", info)}, self._stats(), ours=True)[0]

    def move_to(self, message: Message, target: FolderIndex, origin: int) -> int | None:
        """MOVE: rename the file into `target` (same disk, no copy); its UID there, or
        None if it was gone."""
        with self.own_change():
            for _attempt in range(2):
                try:
                    uid = target.add_file(self.file(message), message.info, link=False)
                    break
                except FileNotFoundError:
                    self.refresh()
                    if message.uid not in self.by_uid:
                        return None
            else:
                return None
            self._forget(message, origin)
            return uid

    def adopt(self, path: Path) -> int:
        """Index a file just written into cur/ (APPEND) and return its UID."""
        base, info = split_name(path.name)
        with self.own_change():
            return self._register(
                [base], {base: (path.parent.name, info)}, self._stats(), ours=True
            )[0]


def give_back_memory() -> None:
    """Hand freed heap back to the system after listing a big folder: the listing and
    the uidlist parsing leave tens of megabytes free but held by the allocator."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


# --- the indexes of the process ------------------------------------------------------------

_open: OrderedDict[Path, FolderIndex] = OrderedDict()
KEEP_MESSAGES = 200_000  # indexes nobody uses are dropped beyond this many messages


def open_folder(path: Path, maildir: Path) -> FolderIndex:
    """The shared index of a folder (built on first use); call `release` when done."""
    index = _open.get(path)
    if index is None:
        index = FolderIndex(path, maildir)
        _open[path] = index
    else:
        _open.move_to_end(path)
        try:
            index.refresh()
        except FolderGone:
            del _open[path]
            raise
    index.users += 1
    return index


def release(index: FolderIndex) -> None:
    index.users = max(0, index.users - 1)
    total = sum(len(i) for i in _open.values())
    for path, candidate in list(_open.items()):
        if total <= KEEP_MESSAGES:
            break
        if candidate.users == 0:
            total -= len(candidate)
            del _open[path]


def forget(path: Path) -> None:
    """Drop the index of a deleted or renamed folder (and its sub-folders)."""
    for known in list(_open):
        if known == path or str(known).startswith(str(path) + "."):
            del _open[known]


CLAIM_AT_ONCE = 1_000  # files a SELECT moves from new/ to cur/ before it answers
_claimers: set[asyncio.Task[None]] = set()


def claim_later(folder: FolderIndex) -> None:
    """Move what a SELECT left in new/ (see `claim_new`'s limit) to cur/ in the
    background, `CLAIM_AT_ONCE` files at a time between the event loop's other work:
    the first SELECT of a folder where 50,000 messages were delivered answers without
    waiting for 50,000 renames (Dovecot renames them all first)."""
    if not folder.in_new or folder.claiming:
        return
    folder.claiming = True
    folder.users += 1  # kept open until done
    task = asyncio.get_running_loop().create_task(_claim_the_rest(folder))
    _claimers.add(task)
    task.add_done_callback(_claimers.discard)


async def _claim_the_rest(folder: FolderIndex) -> None:
    try:
        while folder.in_new:
            await asyncio.sleep(0)
            try:
                folder.refresh()
                folder.claim_new(CLAIM_AT_ONCE)
            except FolderGone:
                return
            except OSError as error:  # the files stay in new/, where readers find them
                log.warning("could not move new messages of %s to cur/: %s", folder.dir, error)
                return
    finally:
        folder.claiming = False
        release(folder)
