"""The delivery journal: where an incoming message becomes durable before "250".

Writing a message into a Maildir durably takes two disk flushes (the file, then the
directory entry), and the SMTP client waits for both. Postfix answers after one: its
queue file. The journal does the same for local copies: the message and where its
copies go (each Maildir, the exact file name, the trace headers of that copy) are
appended to a segment file and flushed once — concurrent sessions share that flush
(group commit) — and only then does the client get "250". A worker thread then writes
the copies into the Maildirs and makes them durable in batches (one `syncfs` for many
messages); a segment is deleted once everything in it is durable in the Maildirs.

After a crash, `recover()` replays the segments left behind before the SMTP port
opens: a copy whose file is already in the Maildir (`new/` or `cur/`) is skipped, so
nothing acknowledged is lost and nothing is delivered twice. A record cut short by
the crash was never acknowledged and is ignored (its checksum does not match).

A segment whose records are all durable in the Maildirs is used again rather than
deleted (`_retire`): writing over blocks a file already has lets `fdatasync` flush
the data alone, where an append must also write the file's new size and blocks
(measured here: 125 against 250 µs for 100 KiB, 90 against 135 µs for 1 KiB). Each
use of a segment has its own number (`incarnation`) in every record; a replay reads
the records of the first record's incarnation and stops at the first of another, so
what an earlier use left further in the file is never replayed.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import json
import logging
import os
import queue
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from courriel.mailstore.events import events
from courriel.mailstore.maildir import MaildirError, deliver, folder_path, fsync_dir

log = logging.getLogger("courriel.mail")

MAGIC = b"CJ02"
# magic, incarnation, header length, content length, crc32 of header and content, and
# crc32 of those five: a head is whole or refused, never a new start on an old rest.
_HEAD_FIELDS = struct.Struct(">4sQIII")
_HEAD = struct.Struct(_HEAD_FIELDS.format + "I")
LEGACY_MAGIC = b"CJ01"  # records of the first version, without an incarnation
_LEGACY_HEAD = struct.Struct(">4sIII")
SEAL_EVERY = 0.5  # seconds: how often the worker seals a segment and makes it durable
SPARE_SEGMENTS = 4  # retired segments kept for use again, per process
SPARE_SEGMENT_MAX = 64 * 1024 * 1024  # a bigger one is deleted instead (a burst's)
_libc = ctypes.CDLL(None, use_errno=True) if hasattr(ctypes, "CDLL") else None


def syncfs(path: Path) -> None:
    """Flush the file system holding `path` (Linux syncfs); sync() elsewhere."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc is not None and hasattr(_libc, "syncfs"):
            if _libc.syncfs(fd) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, os.strerror(errno))
        else:  # pragma: no cover - other systems
            os.sync()
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Copy:
    """One copy of a message: into which Maildir (and folder: "" is the inbox, "Junk"
    for mail the incoming checks hold as spam), under which name, with which trace
    headers on top (Return-Path, Delivered-To, Authentication-Results, Received)."""

    maildir: str
    name: str
    prefix: bytes
    mailbox_id: int
    folder: str = ""


@dataclass
class Record:
    id: str
    copies: list[Copy]
    content: bytes
    # Whether the journal's `after_apply` hook (quota warnings) may have work for it:
    # the router says no when no copy's mailbox has a quota, and the journal's thread
    # is then not woken for it (not written to the journal: a replay asks the hook).
    needs_after_apply: bool = True

    def encode(self, incarnation: int = 0) -> bytes:
        return b"".join(self.pieces(incarnation, self.encoded()))

    def pieces(self, incarnation: int, encoded: tuple[bytes, int]) -> list[bytes]:
        """The record as written, in pieces (no copy of the content into one buffer):
        head, JSON header, content. `encoded` is what `encoded()` returned."""
        header, crc = encoded
        return [_head(incarnation, header, self.content, crc), header, self.content]

    def encoded(self) -> tuple[bytes, int]:
        """The JSON header, and the checksum of header and content: what does not
        depend on the segment the record goes to."""
        header = json.dumps(
            {
                "id": self.id,
                "copies": [
                    [c.maildir, c.name, c.prefix.decode("latin-1"), c.mailbox_id]
                    + ([c.folder] if c.folder else [])
                    for c in self.copies
                ],
            },
            separators=(",", ":"),
        ).encode()
        return header, zlib.crc32(self.content, zlib.crc32(header))


def _head(incarnation: int, header: bytes, content: bytes, crc: int) -> bytes:
    fields = _HEAD_FIELDS.pack(MAGIC, incarnation, len(header), len(content), crc)
    return fields + struct.pack(">I", zlib.crc32(fields))


def decode_segment(data: bytes) -> list[Record]:
    """Every complete record of a segment's current use; stops at the first damaged or
    cut one, and at the first of another incarnation (left by an earlier use)."""
    records: list[Record] = []
    offset, current = 0, None
    while (found := _read_record(data, offset)) is not None:
        incarnation, record, offset = found
        if current is None:
            current = incarnation
        elif incarnation != current:
            break
        records.append(record)
    return records


def _read_record(data: bytes, offset: int) -> tuple[int, Record, int] | None:
    """(incarnation, record, where the next one starts), or None where none is whole.
    Records of the first version (`LEGACY_MAGIC`, left by a crash before an upgrade)
    have no incarnation: -1."""
    magic = data[offset : offset + 4]
    layout = _HEAD if magic == MAGIC else _LEGACY_HEAD if magic == LEGACY_MAGIC else None
    if layout is None or offset + layout.size > len(data):
        return None
    fields = layout.unpack_from(data, offset)
    incarnation = -1
    if layout is _HEAD:
        # A write torn inside the head (power lost) leaves its start on the rest of
        # an earlier use's record: refused here, or that old record would be read
        # as one of this use.
        if zlib.crc32(data[offset : offset + _HEAD_FIELDS.size]) != fields[-1]:
            return None
        incarnation, fields = fields[1], fields[:-1]
    header_len, content_len, crc = fields[-3:]
    start = offset + layout.size
    end = start + header_len + content_len
    if end > len(data):
        return None
    header, content = data[start : start + header_len], data[start + header_len : end]
    if zlib.crc32(content, zlib.crc32(header)) != crc:
        return None
    try:
        meta = json.loads(header)
    except ValueError:
        return None
    copies = [Copy(m, n, p.encode("latin-1"), i, *rest) for m, n, p, i, *rest in meta["copies"]]
    return incarnation, Record(meta["id"], copies, content), end


@dataclass
class _Segment:
    path: Path
    fd: int
    room: int = 0  # bytes the file has already (a segment used again): no append there
    incarnation: int = field(default_factory=lambda: int.from_bytes(os.urandom(8), "big"))
    offset: int = 0  # where the next record goes
    written: int = 0  # records appended
    applied: int = 0  # records written into the Maildirs
    sealed: bool = False
    synced_ticket: int = 0
    ticket: int = 0
    sync_lock: threading.Lock = field(default_factory=threading.Lock)


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._append = threading.Lock()
        self._state = threading.Lock()
        self._sequence = 0
        self._segment: _Segment | None = None
        self._sealed: list[_Segment] = []
        self._spare: list[_Segment] = []  # retired, for use again (`_retire`)
        self._work: queue.Queue[tuple[_Segment, Record, bool] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self.after_apply: Callable[[Record], None] | None = None
        self._dirty: dict[int, Path] = {}  # file systems written since the last flush

    # -- writing ---------------------------------------------------------------------
    def _new_segment(self) -> _Segment:
        """A spare segment (`_retire`) under a new incarnation, else a new file."""
        if self._spare:
            spare = self._spare.pop()
            return _Segment(spare.path, spare.fd, room=spare.room)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._sequence += 1
        path = self.directory / f"{time.time_ns():020d}-{os.getpid()}-{self._sequence}.seg"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        # The segment's name is made durable once, here (a new segment every
        # SEAL_EVERY at most), so that each commit needs only its data flushed.
        try:
            fsync_dir(self.directory)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return _Segment(path, fd)

    def commit(self, record: Record) -> None:
        """Write and flush; when this returns the record survives a crash.
        Raises OSError (nothing acknowledged) when the disk refuses it."""
        encoded = record.encoded()  # (outside the lock: the checksum of the content)
        size = _HEAD.size + len(encoded[0]) + len(record.content)
        with self._append:
            segment = self._segment
            if segment is None:
                segment = self._segment = self._new_segment()
            elif segment.written and segment.offset + size > segment.room and self._spare:
                # A spare has room where this one would grow: seal it, go on there.
                self._seal(segment)
                segment = self._segment = self._new_segment()
            _write_at(segment.fd, record.pieces(segment.incarnation, encoded), segment.offset)
            # What a failed write left at `offset` is written over by the next
            # record, or stops a replay there (its checksum does not match).
            segment.offset += size
            with self._state:
                segment.written += 1
                segment.ticket += 1
                ticket = segment.ticket
        self._flush(segment, ticket)
        if self._worker is None or not self._worker.is_alive():
            self._apply_now(segment, record)
            return
        # The copies go into the Maildirs now, before the client hears "250": a new
        # IMAP or POP3 session sees the message at once. They are made durable later,
        # many at a time; until then the journal holds them. Should the Maildir refuse
        # (disk full), the worker keeps trying: the record is safe either way.
        try:
            self.write_copies(record)
        except (MaildirError, OSError):
            self._work.put((segment, record, False))
            return
        with self._state:
            segment.applied += 1
        # News for IDLE sessions at once; the hook, which may query the database, on
        # the worker thread, and only when it may have work: waking that thread for
        # every message cost a one-session message 4 % of its speed (the thread and
        # the event loop taking the interpreter lock in turn).
        self.announce(record)
        if record.needs_after_apply and self.after_apply is not None:
            self._work.put((segment, record, True))

    def _flush(self, segment: _Segment, ticket: int) -> None:
        """Group commit: one flush started after our write covers every writer
        before it. fdatasync, not fsync: the records and the file's size are what a
        replay needs (the name was made durable with the segment); the times fsync
        would also write cost a journal commit of the file system on every message."""
        with segment.sync_lock:
            if segment.synced_ticket >= ticket:
                return
            with self._state:
                target = segment.ticket
            os.fdatasync(segment.fd)
            segment.synced_ticket = target

    # -- applying ----------------------------------------------------------------------
    def apply(self, record: Record, *, replay: bool = False) -> None:
        """Write every copy into its Maildir and do what follows a delivery."""
        self.write_copies(record, replay=replay)
        self.follow_up(record)

    def write_copies(self, record: Record, *, replay: bool = False) -> None:
        """Write every copy into its Maildir (not flushed yet: the journal still holds
        it). When replaying after a crash, copies already there whole are skipped."""
        for copy in record.copies:
            maildir = _maildir_path(copy.maildir)
            size = len(copy.prefix) + len(record.content)
            if replay and already_there(folder_path(maildir, copy.folder), copy.name, size):
                continue
            deliver(
                maildir,
                [copy.prefix, record.content],
                folder=copy.folder,
                name=copy.name,
                durable=False,
            )
            with self._state:
                self._dirty.setdefault(os.stat(maildir).st_dev, maildir)

    def follow_up(self, record: Record) -> None:
        """What follows the copies: news for IDLE sessions, then quota warnings."""
        self.announce(record)
        self._after_apply(record)

    @staticmethod
    def announce(record: Record) -> None:
        """News of the copies for IDLE sessions (a few µs: no waiting, no database)."""
        for copy in record.copies:
            events.notify(_maildir_path(copy.maildir))

    def _after_apply(self, record: Record) -> None:
        if self.after_apply is not None:
            try:
                self.after_apply(record)
            except Exception:
                log.exception("%s: follow-up after delivery failed", record.id)

    def _apply_now(self, segment: _Segment, record: Record) -> None:
        """Without a worker (command line, tests): apply and flush at once."""
        self.apply(record)
        with self._state:
            segment.applied += 1
        self._collect()

    def start(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._stopping.clear()
            self._worker = threading.Thread(target=self._run, name="delivery-journal", daemon=True)
            self._worker.start()

    def stop(self) -> None:
        """Apply what is pending, make it durable, delete the segments."""
        if self._worker is not None and self._worker.is_alive():
            self._stopping.set()
            self._work.put(None)
            self._worker.join(60)
        self._worker = None
        self._drain()
        self._seal_and_sync()
        self._delete_spares()

    def _run(self) -> None:
        last_seal = time.monotonic()
        while True:
            timeout = max(0.0, SEAL_EVERY - (time.monotonic() - last_seal))
            try:
                item = self._work.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is not None:
                self._handle(*item)
            if self._stopping.is_set() and self._work.empty():
                return
            if time.monotonic() - last_seal >= SEAL_EVERY:
                self._seal_and_sync()
                last_seal = time.monotonic()

    def _handle(self, segment: _Segment, record: Record, written: bool) -> None:
        if written:  # (announced already by `commit`)
            self._after_apply(record)
        else:
            self._apply_item(segment, record)

    def _apply_item(self, segment: _Segment, record: Record) -> None:
        while True:
            try:
                self.apply(record)
                break
            except (MaildirError, OSError) as error:
                # Acknowledged already: keep trying (disk full...), never drop it.
                log.error("%s: cannot write into the Maildir yet (%s); retrying", record.id, error)
                if self._stopping.wait(2.0):
                    return
            except Exception:
                log.exception("%s: unexpected error applying the journal; retrying", record.id)
                if self._stopping.wait(2.0):
                    return
        with self._state:
            segment.applied += 1

    def _drain(self) -> None:
        while True:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._handle(*item)

    def _seal_and_sync(self) -> None:
        """Seal the current segment; once every record of a sealed segment is in the
        Maildirs, flush the Maildirs' file system and retire the segment."""
        with self._append:
            current = self._segment
            if current is not None and current.written:
                self._seal(current)
                self._segment = None
        self._collect()

    def _seal(self, segment: _Segment) -> None:
        """No more records go to `segment` (the caller holds `_append`)."""
        segment.sealed = True
        self._sealed.append(segment)

    def _collect(self) -> None:
        with self._state:
            done = [s for s in self._sealed if s.applied >= s.written]
            if self._segment is not None and not self._segment.sealed:
                current = self._segment
                if (
                    current.written
                    and current.applied >= current.written
                    and (self._worker is None or not self._worker.is_alive())
                ):
                    done.append(current)
        if not done:
            return
        with self._state:
            dirty = list(self._dirty.values())
            self._dirty.clear()
        try:
            for path in dirty:  # one flush per file system written to
                syncfs(path)
        except OSError as error:
            log.error("cannot flush delivered mail to disk (%s); will retry", error)
            with self._state:
                for path in dirty:
                    self._dirty.setdefault(os.stat(path).st_dev, path)
            return
        retired = []
        with self._append, self._state:
            for segment in done:
                if segment in self._sealed:
                    self._sealed.remove(segment)
                elif segment is self._segment and segment.applied >= segment.written:
                    # (Checked again: without a worker, another commit may have
                    # written into it since, and be flushing it now.)
                    self._segment = None
                else:
                    continue  # retired by another `_collect` meanwhile, or in use
                retired.append(segment)
        for segment in retired:
            self._retire(segment)

    def _retire(self, segment: _Segment) -> None:
        """Every record of `segment` is durable in the Maildirs: keep the file as a
        spare for a later use (see the module's docstring) or delete it. Its first
        record is wiped, and that made durable, before it is used again: a replay of
        a spare finds nothing, and one of a segment in use again never reads on into
        what the earlier use left (the new records start at its first byte)."""
        keep = (
            self._worker is not None
            and self._worker.is_alive()
            and len(self._spare) < SPARE_SEGMENTS
            and _HEAD.size <= segment.offset <= SPARE_SEGMENT_MAX
        )
        if keep:
            room = max(segment.offset, segment.room)
            try:
                os.pwrite(segment.fd, bytes(min(room, 4096)), 0)
                os.fdatasync(segment.fd)
            except OSError as error:
                log.warning("journal segment %s not kept for use again: %s", segment.path, error)
            else:
                with self._append:
                    self._spare.append(_Segment(segment.path, segment.fd, room=room))
                return
        _delete(segment)

    def _delete_spares(self) -> None:
        with self._append:
            spares, self._spare = self._spare, []
        for segment in spares:
            _delete(segment)

    # -- recovery ----------------------------------------------------------------------
    def recover(self) -> int:
        """Replay segments left by a previous process (a crash); returns how many
        records were replayed. Run before the SMTP port opens."""
        if not self.directory.is_dir():
            return 0
        # Several processes (the main one and SMTP workers) may start at once: one
        # replays at a time, so no copy is written twice.
        with open(self.directory / "recover.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self._replay()

    def _replay(self) -> int:
        replayed = 0
        mine = {s.path for s in [*self._sealed, *self._spare, self._segment] if s is not None}
        for path in sorted(self.directory.glob("*.seg")):
            if path in mine or _writer_alive(path):
                continue
            try:
                records = decode_segment(path.read_bytes())
            except OSError as error:
                log.error("cannot read delivery journal %s: %s", path, error)
                continue
            for record in records:
                self.apply(record, replay=True)
                replayed += 1
            with self._state:
                dirty = list(self._dirty.values())
                self._dirty.clear()
            for maildir in dirty:
                syncfs(maildir)
            path.unlink()
        return replayed


def _write_at(fd: int, pieces: list[bytes], offset: int) -> None:
    """Write `pieces` one after the other from `offset` (one system call, no copy
    into one buffer unless the kernel takes only part)."""
    total = sum(map(len, pieces))
    done = os.pwritev(fd, pieces, offset)
    if done < total:
        rest = memoryview(b"".join(pieces))
        while done < total:
            done += os.pwrite(fd, rest[done:], offset + done)


def _delete(segment: _Segment) -> None:
    with contextlib.suppress(OSError):
        os.close(segment.fd)
    with contextlib.suppress(OSError):
        segment.path.unlink()


def _writer_alive(path: Path) -> bool:
    """A segment of another running process (not ours to replay)."""
    try:
        pid = int(path.name.split("-")[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"courriel" in handle.read()
    except OSError:
        return False


def already_there(maildir: Path, name: str, size: int) -> bool:
    """The copy is in the Maildir whole (a crash of the machine can leave a file whose
    name was written but not all of its data: that one is written again)."""

    def whole(path: Path | str) -> bool:
        try:
            return os.stat(path).st_size == size
        except OSError:
            return False

    if whole(maildir / "new" / name) or whole(maildir / "cur" / name):
        return True
    prefix = name + ":2,"
    try:
        with os.scandir(maildir / "cur") as entries:
            return any(entry.name.startswith(prefix) and whole(entry.path) for entry in entries)
    except FileNotFoundError:
        return False


_journals: dict[Path, Journal] = {}
_journals_lock = threading.Lock()


@functools.lru_cache(maxsize=4096)
def _maildir_path(maildir: str) -> Path:
    """The same Path object for a Maildir's every message: made once, its string and
    hash are kept with it."""
    return Path(maildir)


def get_journal(directory: Path | None = None) -> Journal:
    if directory is None:
        from courriel.config import child, get_config

        directory = child(get_config().data_dir, "journal")
    with _journals_lock:
        journal = _journals.get(directory)
        if journal is None:
            journal = _journals[directory] = Journal(directory)
        return journal
