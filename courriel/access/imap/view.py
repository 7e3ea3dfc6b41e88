"""The selected mailbox as one client knows it: its sequence numbers (the UIDs in the
order the client was told of them), its \\Recent messages, and what happened meanwhile
that it has not been told yet — expunges by other sessions, flag changes, new keywords.

RFC 3501 5.2 forbids telling a client about an expunge during FETCH, STORE or SEARCH,
so a message another session expunged stays in the view, answered from its last known
state (a "ghost": its flags, its size, NIL for its content), until a command that may
report the expunge; then `* n EXPUNGE` goes out and the numbers shift. This is what
Dovecot does, and why neither answers NO to a FETCH or STORE that touches such a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from courriel.mailstore.index import EXPUNGE, FLAG_CHANGE, FolderIndex, Message


@dataclass
class SearchUpdate:
    """A SEARCH RETURN (UPDATE) the client keeps up to date (RFC 5267): its program,
    and the UIDs it matched when the client last heard."""

    keys: tuple[Any, ...]
    uid: bool
    matched: set[int]


@dataclass
class Selected:
    name: str
    index: FolderIndex
    readonly: bool
    view: list[int]  # UIDs in sequence-number order, as this client knows them
    recent: set[int]
    modseq: int  # the index's change log has been read up to here
    max_uid: int
    pending_expunges: set[int] = field(default_factory=set)
    ghosts: dict[int, Message] = field(default_factory=dict)
    changed: set[int] = field(default_factory=set)  # flags changed by other sessions
    keywords: tuple[str, ...] = ()  # the keywords announced in the last `* FLAGS`
    recent_told: int = 0  # the last RECENT count the client heard
    saved: list[int] = field(default_factory=list)  # SEARCHRES "$": UIDs, RFC 5182
    updates: dict[str, SearchUpdate] = field(default_factory=dict)  # CONTEXT=SEARCH

    def lookup(self, uid: int) -> Message | None:
        """The message with this UID as the client may still see it (a ghost if it was
        expunged by another session and the client has not been told)."""
        message = self.index.by_uid.get(uid)
        if message is None:
            return self.ghosts.get(uid)
        return message

    def absorb(self, origin: int) -> None:
        """Read what changed in the folder since last time (by anyone), without telling
        the client yet: expunges become pending (their messages ghosts), flag changes by
        others are noted for the next untagged FETCH."""
        index = self.index
        index.refresh()
        entries = index.changes_since(self.modseq)
        if entries is None:  # too far behind the log: compare everything
            self.pending_expunges.update(u for u in self.view if u not in index.by_uid)
            self.changed.update(self.view)
        else:
            for _modseq, uid, kind, who, message in entries:
                if kind == EXPUNGE:
                    self.pending_expunges.add(uid)
                    self.ghosts[uid] = message
                elif kind == FLAG_CHANGE and who != origin:
                    self.changed.add(uid)
        self.modseq = index.modseq

    def current_keywords(self) -> tuple[str, ...]:
        return tuple(name for name in self.index.keywords.names if name)


def uid_set(uids: list[int]) -> str:
    """Compact `1:3,7` form, keeping the order of the pairs as RFC 4315 requires."""
    parts: list[str] = []
    start = previous = uids[0]
    for uid in uids[1:]:
        if uid == previous + 1:
            previous = uid
            continue
        parts.append(f"{start}:{previous}" if start != previous else str(start))
        start = previous = uid
    parts.append(f"{start}:{previous}" if start != previous else str(start))
    return ",".join(parts)
