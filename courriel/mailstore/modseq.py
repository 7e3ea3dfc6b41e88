"""`courriel-modseq`: the modification sequences of a Maildir folder (CONDSTORE, RFC
7162), kept on disk so that clients that cached HIGHESTMODSEQ get the right answer to
`CHANGEDSINCE` after a restart.

Dovecot keeps mod-sequences in its own binary index, which we neither read nor write;
this file is ours, in the folder directory next to `dovecot-uidlist`, and Dovecot
ignores it (only `cur/`, `new/`, `tmp/`, its own `dovecot*` files and `.Folder`
directories mean something to it). After a move to Dovecot, Dovecot starts counters of
its own; after a move from Dovecot, our first base value is taken from the clock in
microseconds, above any counter Dovecot can have reached, so clients resynchronise
rather than miss changes.

Format: a header line `1 V<uidvalidity> B<base> H<highest> U<uid>`, then `<uid>
<modseq>` lines appended as messages arrive or change (a later line wins). A message
without a line has the base value if its UID is at most `U`; one with a higher UID
arrived while no index of ours watched the folder, and gets a new value. So does every
message when `cur/` changed after the file was last written (flags renamed by someone
else meanwhile). The file is appended to under an exclusive `flock` (which also orders
the counters of several processes) and rewritten, smaller, now and then.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

FILENAME = "courriel-modseq"
MAX_MODSEQ = 2**63 - 1


@dataclass
class ModseqFile:
    uidvalidity: int
    base: int  # the mod-sequence of messages without a record
    highest: int  # HIGHESTMODSEQ: every value ever given in this folder is at most this
    covered: int = 0  # messages up to this UID without a record have the base value
    # uid -> modseq read from the file and not yet taken over by the folder index
    records: dict[int, int] = field(default_factory=dict)
    inode: int = 0
    offset: int = 0
    lines: int = 0  # records in the file (to know when rewriting it pays)

    def header(self) -> bytes:
        return (f"1 V{self.uidvalidity} B{self.base} H{self.highest} U{self.covered}\n").encode(
            "ascii"
        )


def clock_base() -> int:
    """A first value above anything handed out before in this folder, by us (a lost
    file) or by Dovecot (whose counters start at 1 and grow by one per change)."""
    return time.time_ns() // 1000


def _parse(data: bytes, state: ModseqFile) -> None:
    records = state.records
    for line in data.split(b"\n"):
        uid, _, value = line.partition(b" ")
        if not uid.isdigit() or not value.isdigit():
            continue
        modseq, number = int(value), int(uid)
        records[number] = modseq
        state.lines += 1
        if number > state.covered:
            state.covered = number
        if modseq > state.highest:
            state.highest = modseq


def read(folder: Path) -> ModseqFile | None:
    """The whole file; None when it is missing or unreadable (then it is started anew)."""
    try:
        with open(folder / FILENAME, "rb") as handle:
            inode = os.fstat(handle.fileno()).st_ino
            data = handle.read()
    except OSError:
        return None
    end = data.rfind(b"\n") + 1  # a line being appended right now is read next time
    first, _, rest = data[:end].partition(b"\n")
    values = {part[:1]: part[1:] for part in first.split()[1:]}
    try:
        state = ModseqFile(
            int(values[b"V"]), int(values[b"B"]), int(values[b"H"]), int(values[b"U"])
        )
    except (KeyError, ValueError):
        return None
    _parse(rest, state)
    state.inode, state.offset = inode, end
    return state


def write(folder: Path, state: ModseqFile, current: dict[int, int]) -> None:
    """Replace the file atomically: the header and the records of `current` (uid ->
    modseq) that differ from the base. Call under `locked`."""
    body = "".join(f"{uid} {modseq}\n" for uid, modseq in current.items() if modseq != state.base)
    data = state.header() + body.encode("ascii")
    tmp = folder / f"{FILENAME}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, folder / FILENAME)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    state.inode = os.stat(folder / FILENAME).st_ino
    state.offset = len(data)
    state.lines = len(current)


@contextlib.contextmanager
def locked(folder: Path, state: ModseqFile) -> Iterator[int]:
    """Hold the file's lock, with what other processes appended meanwhile read into
    `state` (its `records` and `highest`); yields a descriptor to `append` with. A file
    that disappeared or changed UIDVALIDITY leaves `state.inode` at 0: the caller
    rewrites it from memory."""
    path = folder / FILENAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            try:
                same = os.stat(path).st_ino == st.st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)  # rewritten by another process while we waited: lock the new one
    try:
        if st.st_ino != state.inode:
            fresh = read(folder) if st.st_size else None
            if fresh is None or fresh.uidvalidity != state.uidvalidity:
                state.inode = 0  # ours to rewrite
            else:
                state.records.update(fresh.records)
                state.highest = max(state.highest, fresh.highest)
                state.covered = max(state.covered, fresh.covered)
                state.inode, state.offset, state.lines = fresh.inode, fresh.offset, fresh.lines
        elif st.st_size > state.offset:
            data = os.pread(fd, st.st_size - state.offset, state.offset)
            end = data.rfind(b"\n") + 1
            _parse(data[:end], state)
            state.offset += end
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def append(fd: int, state: ModseqFile, changes: list[tuple[int, int]]) -> None:
    """Append `(uid, modseq)` records (under `locked`)."""
    if not changes:
        return
    data = "".join(f"{uid} {modseq}\n" for uid, modseq in changes).encode("ascii")
    os.write(fd, data)
    state.offset += len(data)
    state.lines += len(changes)
