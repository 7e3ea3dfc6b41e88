"""The durable outbound spool: one message file and one envelope file per entry.

The message is written and fsynced first, then the envelope (JSON) is written to a
temporary name, fsynced and renamed into place, and the directory is fsynced: an
entry exists exactly when both are durable. A crash in between leaves only a message
file without envelope, which `recover` removes. Updates rewrite the envelope the same
atomic way, so a crash never leaves a half-updated entry.

An update never brings back an entry removed meanwhile: a delivery attempt works on
a copy of the envelope for as long as the remote servers take, and `courriel queue
delete` (another process) may remove the entry in that time. Putting an envelope
back and removing an entry both happen under the spool's lock (threads and
processes alike), held for a rename or two unlinks, never during a delivery.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from courriel.mailstore.maildir import fsync_dir, write_all

KINDS = ("forward", "relay", "autoreply", "bounce", "notice", "local")


@dataclass
class Recipient:
    address: str
    status: str = "pending"  # pending | sent | failed
    mailbox_id: int | None = None  # set: deliver straight into this mailbox
    delivered_to: str = ""  # with mailbox_id: the address it was reached through
    attempts: int = 0
    last_error: str = ""
    original: str = ""  # the address the sender used, for bounces
    notified: bool = False  # the sender has had the bounce for this recipient
    folder: str = ""  # with mailbox_id: the folder the copy goes to ("" the inbox)
    name: str = ""  # with mailbox_id: the Maildir file name it keeps (courriel.cluster)


@dataclass
class Entry:
    id: str
    sender: str  # "" is the null sender
    recipients: list[Recipient]
    kind: str
    created: float
    next_attempt: float
    attempts: int = 0
    delay_notified: bool = False
    last_error: str = ""
    size: int = 0
    note: str = ""

    @property
    def pending(self) -> list[Recipient]:
        return [r for r in self.recipients if r.status == "pending"]

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Entry:
        data = json.loads(text)
        data["recipients"] = [Recipient(**r) for r in data["recipients"]]
        return cls(**data)


_ids = itertools.count()


def new_id() -> str:
    """Sortable and unique on this host: time in microseconds, process, counter."""
    return f"{int(time.time() * 1_000_000):014X}{os.getpid() & 0xFFFF:04X}{next(_ids) & 0xFFF:03X}"


@dataclass
class Spool:
    root: Path
    _listeners: list[Callable[[], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.msg_dir = self.root / "msg"
        self.env_dir = self.root / "env"

    def ensure(self) -> None:
        for path in (self.msg_dir, self.env_dir):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def message_path(self, entry_id: str) -> Path:
        return self.msg_dir / entry_id

    def _env_path(self, entry_id: str) -> Path:
        return self.env_dir / f"{entry_id}.json"

    def on_enqueue(self, listener: Callable[[], None]) -> None:
        """Called (from any thread) after each enqueue: wakes the queue runner."""
        self._listeners.append(listener)

    def enqueue(
        self,
        sender: str,
        recipients: Iterable[Recipient | str],
        data: bytes | Iterable[bytes],
        *,
        kind: str,
        note: str = "",
        durable: bool = True,
        entry_id: str | None = None,
    ) -> Entry:
        """Store a message for delivery; raises OSError (nothing left behind) on failure."""
        if kind not in KINDS:
            raise ValueError(f"unknown queue entry kind {kind!r}")
        self.ensure()
        entry_id = entry_id or new_id()
        message = self.message_path(entry_id)
        chunks = [data] if isinstance(data, bytes | bytearray) else list(data)
        size = 0
        try:
            fd = os.open(message, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                size = write_all(fd, chunks)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            now = time.time()
            entry = Entry(
                id=entry_id,
                sender=sender,
                recipients=[r if isinstance(r, Recipient) else Recipient(r) for r in recipients],
                kind=kind,
                created=now,
                next_attempt=now,
                size=size,
                note=note,
            )
            self._write_env(entry, durable=durable)
        except OSError:
            with contextlib.suppress(OSError):
                message.unlink()
            raise
        for listener in list(self._listeners):
            listener()
        if not self._listeners:
            # Enqueued by another process (the CLI): tell the running server.
            from courriel.outbound.admin import wake_server

            wake_server()
        return entry

    def _write_env(
        self, entry: Entry, *, durable: bool = True, only_if_present: bool = False
    ) -> bool:
        """Write the envelope atomically. With `only_if_present`, only over an envelope
        that is still there (False: the entry was removed, nothing written)."""
        path = self._env_path(entry.id)
        tmp = path.with_suffix(f".tmp{threading.get_ident()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, entry.to_json().encode("utf-8"))
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if only_if_present:
                with self._locked():
                    if not path.exists():
                        tmp.unlink()
                        return False
                    os.replace(tmp, path)
            else:
                os.replace(tmp, path)
            if durable:
                fsync_dir(self.env_dir)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The spool's lock, between threads and processes: flock on the envelope
        directory itself (no lock file whose owner could shut the service user out), a
        descriptor of its own each time, as flock() does not exclude two holders of
        one descriptor."""
        self.env_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.env_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def save(self, entry: Entry) -> bool:
        """Rewrite the envelope of an entry that still exists; False (nothing written)
        when it was removed since it was loaded."""
        return self._write_env(entry, only_if_present=True)

    def load(self, entry_id: str) -> Entry | None:
        try:
            return Entry.from_json(self._env_path(entry_id).read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def read_message(self, entry_id: str) -> bytes:
        return self.message_path(entry_id).read_bytes()

    def remove(self, entry_id: str) -> None:
        with self._locked():
            with contextlib.suppress(FileNotFoundError):
                self._env_path(entry_id).unlink()
            with contextlib.suppress(FileNotFoundError):
                self.message_path(entry_id).unlink()

    def ids(self) -> list[str]:
        if not self.env_dir.is_dir():
            return []
        return sorted(name[:-5] for name in os.listdir(self.env_dir) if name.endswith(".json"))

    def entries(self) -> Iterator[Entry]:
        for entry_id in self.ids():
            entry = self.load(entry_id)
            if entry is not None:
                yield entry

    def recover(self, older_than: float = 3600) -> int:
        """Remove message files whose envelope never became durable (crash between the
        two writes): their sender never got a "250", so nothing acknowledged is lost."""
        if not self.msg_dir.is_dir():
            return 0
        envelopes = set(self.ids())
        removed = 0
        limit = time.time() - older_than
        for name in os.listdir(self.msg_dir):
            if name in envelopes:
                continue
            path = self.msg_dir / name
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
        for name in os.listdir(self.env_dir):
            if ".tmp" in name:
                with contextlib.suppress(OSError):
                    (self.env_dir / name).unlink()
        return removed


_spools: dict[Path, Spool] = {}


def get_spool(root: Path | None = None) -> Spool:
    """The spool of this data directory (one object per process, shared by threads)."""
    if root is None:
        from courriel.config import child, get_config

        root = child(get_config().data_dir, "queue")
    spool = _spools.get(root)
    if spool is None:
        spool = _spools.setdefault(root, Spool(root))
    return spool
