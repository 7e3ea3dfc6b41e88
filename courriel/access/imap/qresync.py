"""QRESYNC (RFC 7162 section 3.2): what a client that kept a mailbox's state (its
UIDVALIDITY and HIGHESTMODSEQ) must learn to be up to date again: the UIDs expunged
since (`VANISHED (EARLIER)`) and the messages changed since.

Expunges are known exactly while the folder's change log reaches back to the client's
mod-sequence; beyond it (an index built after a restart, or a value from another
server) every UID the client may know of that no longer exists is reported, as Dovecot
does then: a client ignores UIDs it never had.
"""

from __future__ import annotations

import bisect

from courriel.access.imap.parser import STAR, SequenceSet
from courriel.mailstore.index import EXPUNGE, FolderIndex

Ranges = list[tuple[int, int]]


def vanished_since(index: FolderIndex, modseq: int, known: SequenceSet | None) -> Ranges:
    """UIDs expunged after `modseq`, among `known` (every UID below UIDNEXT if None), as
    ranges (a folder with a long history may have millions)."""
    largest = index.uidnext - 1
    wanted = _ranges(known, largest) if known is not None else [(1, largest)]
    entries = index.changes_since(modseq)
    if entries is not None:
        gone = sorted(
            {uid for _m, uid, kind, _o, _msg in entries if kind == EXPUNGE} - set(index.by_uid)
        )
        return _compress([u for u in gone if _within(u, wanted)])
    present = index.uids
    missing: Ranges = []
    for low, high in wanted:  # the gaps between the UIDs still there
        cursor = low
        position = bisect.bisect_left(present, low)
        while cursor <= high:
            following = present[position] if position < len(present) else high + 1
            if following > cursor:
                missing.append((cursor, min(following - 1, high)))
            cursor = following + 1
            position += 1
    return missing


def _ranges(ranges: SequenceSet, largest: int) -> Ranges:
    out = []
    for first, last in ranges:
        low = largest if first == STAR else first
        high = largest if last == STAR else last
        low, high = min(low, high), min(max(low, high), largest)
        if low <= high:
            out.append((low, high))
    return sorted(out)


def _within(uid: int, ranges: Ranges) -> bool:
    return any(low <= uid <= high for low, high in ranges)


def _compress(uids: list[int]) -> Ranges:
    out: Ranges = []
    for uid in uids:
        if out and out[-1][1] == uid - 1:
            out[-1] = (out[-1][0], uid)
        else:
            out.append((uid, uid))
    return out


def text(ranges: Ranges) -> str:
    return ",".join(f"{a}:{b}" if a != b else str(a) for a, b in ranges)
