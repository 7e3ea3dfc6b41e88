"""`dovecot-uidlist`: the file that gives every message of a Maildir folder its IMAP UID.

Keeping Dovecot's own file (version 3: `3 V<uidvalidity> N<next uid> G<guid>`, then one
`<uid> :<base name>` line per message) means Dovecot can take over a Maildir served by
us, and the other way round, without clients seeing new UIDs and downloading everything
again. New records are appended under Dovecot's dot-lock (`dovecot-uidlist.lock`) like
Dovecot does, so a reader that remembers how far it read only reads the tail.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

FILENAME = "dovecot-uidlist"
LOCKNAME = "dovecot-uidlist.lock"
STALE_LOCK = 120.0  # seconds, Dovecot's default for this lock


class UidListLocked(OSError):
    """Another process holds the uidlist lock for too long."""


@dataclass
class UidList:
    uidvalidity: int
    next_uid: int
    guid: str
    # base name -> uid; the folder index drops the names it has taken over
    records: dict[str, int] = field(default_factory=dict)
    # What has been read, so that records appended later are read from there on.
    inode: int = 0
    offset: int = 0

    def header(self) -> bytes:
        return f"3 V{self.uidvalidity} N{self.next_uid} G{self.guid}\n".encode("ascii")


def new(uidvalidity: int | None = None) -> UidList:
    return UidList(uidvalidity or int(time.time()), 1, secrets.token_hex(16))


def _parse_header(line: str) -> tuple[int, int, str] | None:
    parts = line.split()
    if not parts:
        return None
    if parts[0] == "1" and len(parts) >= 3:
        return int(parts[1]), int(parts[2]), ""
    if parts[0] != "3":
        return None
    values = {part[0]: part[1:] for part in parts[1:] if part}
    return int(values.get("V", "0")), int(values.get("N", "1")), values.get("G", "")


def _parse_records(text: str, uidlist: UidList) -> None:
    records = uidlist.records
    for line in text.splitlines():
        if not line:
            continue
        head, sep, base = line.partition(" :")
        if not sep:  # version 1: "<uid> <name>"
            head, _, base = line.partition(" ")
        number = head.split(" ", 1)[0]
        if not number.isdigit() or not base:
            continue
        uid = int(number)
        records[base] = uid
        if uid >= uidlist.next_uid:
            uidlist.next_uid = uid + 1


def read(folder: Path) -> UidList | None:
    """The whole file, or None when it is missing or unreadable (then it is rebuilt)."""
    try:
        with open(folder / FILENAME, "rb") as handle:
            inode = os.fstat(handle.fileno()).st_ino
            data = handle.read()
    except OSError:
        return None
    end = data.rfind(b"\n") + 1  # a line being appended right now is read next time
    first, _, rest = data[:end].partition(b"\n")
    try:
        header = _parse_header(first.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    if header is None or header[0] <= 0:
        return None
    uidlist = UidList(header[0], max(header[1], 1), header[2] or secrets.token_hex(16))
    _parse_records(rest.decode("utf-8", "surrogateescape"), uidlist)
    uidlist.inode, uidlist.offset = inode, end
    return uidlist


def refresh(folder: Path, uidlist: UidList) -> UidList | None:
    """Records others appended since we read; the whole file again if it was rewritten.
    Returns None when the file disappeared or changed UIDVALIDITY (start over)."""
    try:
        st = os.stat(folder / FILENAME)
    except OSError:
        return None
    if st.st_ino != uidlist.inode or st.st_size < uidlist.offset:
        fresh = read(folder)
        if fresh is None or fresh.uidvalidity != uidlist.uidvalidity:
            return None
        return fresh
    if st.st_size == uidlist.offset:
        return uidlist
    with open(folder / FILENAME, "rb") as handle:
        handle.seek(uidlist.offset)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    _parse_records(data[:end].decode("utf-8", "surrogateescape"), uidlist)
    uidlist.offset += end
    return uidlist


def append(folder: Path, uidlist: UidList, bases: list[str]) -> list[int]:
    """Give the next UIDs to `bases` and append them to the file (hold `lock`)."""
    uids = []
    lines = []
    for base in bases:
        uid = uidlist.next_uid
        uidlist.next_uid += 1
        uidlist.records[base] = uid
        uids.append(uid)
        lines.append(f"{uid} :{base}\n")
    path = folder / FILENAME
    if not path.exists():
        write(folder, uidlist)
        return uids
    data = "".join(lines).encode("utf-8", "surrogateescape")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    uidlist.offset += len(data)
    return uids


def write(folder: Path, uidlist: UidList) -> None:
    """Rewrite the file atomically with `uidlist.records`. Hold `lock`."""
    body = "".join(
        f"{uid} :{base}\n" for base, uid in sorted(uidlist.records.items(), key=lambda i: i[1])
    ).encode("utf-8", "surrogateescape")
    data = uidlist.header() + body
    tmp = folder / f"{FILENAME}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, folder / FILENAME)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    uidlist.inode = os.stat(folder / FILENAME).st_ino
    uidlist.offset = len(data)


@contextlib.contextmanager
def lock(folder: Path, timeout: float = 10.0) -> Iterator[None]:
    """Dovecot's dot-lock: create `dovecot-uidlist.lock` exclusively; a lock older than
    two minutes was left by a crashed process and is taken over."""
    path = folder / LOCKNAME
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > STALE_LOCK:
                    path.unlink()
                    continue
            if time.monotonic() > deadline:
                raise UidListLocked(f"{path} is held by another process") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
