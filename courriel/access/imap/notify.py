"""IMAP NOTIFY (RFC 5465): what a client asked to hear about (`Spec`, built from the
parsed command with the RFC's and Dovecot 2.3's rules) and the `Notifier` that tells it,
unsolicited, while it sits idle on the connection or at the end of its next command:

- changes of messages in non-selected mailboxes in scope as `* STATUS`, with the items
  Dovecot sends (MESSAGES UIDNEXT UNSEEN after new or expunged messages, UNSEEN after a
  \\Seen change, all four with UIDVALIDITY at a new UIDVALIDITY, HIGHESTMODSEQ once
  CONDSTORE is on);
- mailboxes created, deleted, renamed, (un)subscribed as `* LIST` (`\\NonExistent` for
  a deleted one, `("OLDNAME" (old))` for a renamed one, `\\Subscribed`);
- the selected mailbox's EXISTS/EXPUNGE/FETCH, as IDLE sends them, when the client
  named SELECTED or SELECTED-DELAYED (the latter keeps expunges for a command that may
  report them).

The Maildir is the source of truth whoever changes it (another session, SMTP/LMTP
delivery, POP3, another program): the notifier watches, with inotify, the Maildir's top
directory (folders and the subscriptions file) and the `new/`/`cur/` of the folders in
scope only, and compares what it told with what is on disk when something moved. Bursts
are coalesced into one report per mailbox; what waits to be told is a set of names, and
a client that does not read stops the notifier at `drain`: memory stays bounded.
Without inotify it polls the scope every `POLL_SECONDS`.

Only this user's own mailboxes can be in scope: names are only ever compared with the
user's own folder names, never opened as paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from courriel.access.imap import wire
from courriel.access.imap.errors import Bad, No
from courriel.access.imap.parser import NOTIFY_EVENTS
from courriel.mailstore import folders, watch
from courriel.mailstore.events import events
from courriel.mailstore.folders import FolderError
from courriel.mailstore.index import FolderGone

if TYPE_CHECKING:
    from courriel.access.imap.parser import FetchAtt
    from courriel.access.imap.session import ImapSession

log = logging.getLogger("courriel.access.imap")

# As Dovecot 2.3: it keeps no annotations per message nor metadata change log.
UNSUPPORTED = ("AnnotationChange", "MailboxMetadataChange", "ServerMetadataChange")
ORDER = tuple(NOTIFY_EVENTS.values())  # RFC 5465's order, in which [BADEVENT] names them
MESSAGE_EVENTS = frozenset({"MessageNew", "MessageExpunge", "FlagChange"})
MAX_NAMES = 100  # mailbox names of one filter (Dovecot's IMAP_NOTIFY_MAX_NAMES_PER_NS)
MAX_WATCHED = 1000  # folders one session watches for message events
SETTLE = 0.05  # seconds: changes that come together are told together
POLL_SECONDS = 5.0  # without inotify: how often the scope is compared with the disk
STATUS_ITEMS = ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"]


class Counts(NamedTuple):
    messages: int
    uidnext: int
    uidvalidity: int
    unseen: int
    modseq: int


@dataclass(frozen=True)
class Filter:
    kind: str  # PERSONAL, INBOXES, SUBSCRIBED, SUBTREE, MAILBOXES
    names: tuple[str, ...]
    events: frozenset[str]

    def covers(self, name: str, subscribed: set[str]) -> bool:
        if self.kind in {"PERSONAL", "INBOXES"}:  # Dovecot: no way to know "inboxes"
            return True
        if self.kind == "SUBSCRIBED":
            return name in subscribed
        if self.kind == "SUBTREE":
            return any(name == n or name.startswith(n + folders.SEPARATOR) for n in self.names)
        return name in self.names


@dataclass
class Spec:
    status: bool = False
    selected: frozenset[str] = frozenset()  # events of the selected mailbox
    immediate_expunges: bool = False  # SELECTED (not SELECTED-DELAYED)
    fetch: list[FetchAtt] = field(default_factory=list)  # MessageNew's fetch attributes
    filters: list[Filter] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def wants(self, name: str, subscribed: set[str], wanted: frozenset[str]) -> bool:
        return any(f.events & wanted and f.covers(name, subscribed) for f in self.filters)


def build(args: dict[str, Any], to_storage: Any) -> Spec:
    """The NOTIFY SET/NONE a client sent, checked as Dovecot checks it: BAD for a
    selected filter given twice or events that cannot go together, NO [BADEVENT] for
    events not offered, NO [NOTIFICATIONOVERFLOW] for too many names."""
    spec = Spec(status=args["status"])
    selected_seen = False
    for group in args["groups"]:
        kind, names, events_ = group["filter"], group["mailboxes"], set(group["events"])
        spec.used |= events_
        if kind.startswith("SELECTED"):
            if selected_seen:
                raise Bad("Duplicate selected filter.")
            selected_seen = True
            spec.immediate_expunges = kind == "SELECTED"
            new_or_gone = events_ & {"MessageNew", "MessageExpunge"}
            if new_or_gone and len(new_or_gone) != 2:
                raise Bad("MessageNew and MessageExpunge must be together.")
            if events_ & {"FlagChange", "AnnotationChange"} and "MessageExpunge" not in events_:
                raise Bad("FlagChange requires MessageNew and MessageExpunge.")
            spec.selected = frozenset(events_)
            spec.fetch = group["fetch"]
            continue
        if not events_:
            continue  # NONE: the default
        if len(names) > MAX_NAMES:
            raise No("Too many mailbox names.", "NOTIFICATIONOVERFLOW")
        stored = tuple(dict.fromkeys(folders.normalize(to_storage(n)) for n in names))
        spec.filters.append(Filter(kind, stored, frozenset(events_)))
    unsupported = [name for name in ORDER if name in spec.used and name in UNSUPPORTED]
    if unsupported:
        raise No("Unsupported NOTIFY events.", "BADEVENT " + " ".join(unsupported))
    return spec


class _FolderEvent(asyncio.Event):
    """Set by inotify for one folder: remembers which one moved."""

    def __init__(self, notifier: Notifier, name: str) -> None:
        super().__init__()
        self.notifier = notifier
        self.name = name

    def set(self) -> None:
        self.notifier.touched(self.name)


class _NamesEvent(asyncio.Event):
    def __init__(self, notifier: Notifier) -> None:
        super().__init__()
        self.notifier = notifier

    def set(self) -> None:
        self.notifier.touched(None)


class Notifier:
    def __init__(self, session: ImapSession, spec: Spec) -> None:
        self.session = session
        self.spec = spec
        self.maildir: Path = session.user_store.maildir
        self.wake = asyncio.Event()
        self.dirty: set[str] = set()  # folders whose messages moved
        self.names_dirty = True
        self.identities: dict[str, int] = folders.identities(self.maildir)
        self.subscribed = folders.subscribed(self.maildir, list(self.identities))
        self.told: dict[str, Counts] = {}  # what the client knows of each folder in scope
        self.watched: dict[str, tuple[Path, _FolderEvent]] = {}
        self.names_event = _NamesEvent(self)
        self.inotify = watch.watch_names(self.maildir, self.names_event)
        self.relay: asyncio.Event | None = None
        if not self.inotify:  # in-process deliveries at least, and a slow poll
            self.relay = events.subscribe(self.maildir)
        self.overflowed = False
        self.task: asyncio.Task[None] | None = None

    # --- life ------------------------------------------------------------------------------

    def start(self) -> None:
        """Watch the scope; with STATUS, tell the state of every mailbox in it."""
        self.names_dirty = False
        for name in self._in_scope():
            counts = self._counts(name)
            if counts is None:
                continue
            self.told[name] = counts
            if self.spec.status and name != self._selected_name():
                items = list(STATUS_ITEMS)
                if "FlagChange" in self.spec.used:  # and CONDSTORE on, as by STATUS
                    items.append("HIGHESTMODSEQ")
                    self.session.condstore = True
                self._send_status(name, counts, items)
        self._rewatch()
        self.task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
        for name in list(self.watched):
            self._unwatch(name)
        watch.unwatch_names(self.maildir, self.names_event)
        if self.relay is not None:
            events.unsubscribe(self.maildir, self.relay)

    def touched(self, name: str | None) -> None:
        if name is None:
            self.names_dirty = True
        else:
            self.dirty.add(name)
        self.wake.set()

    async def _run(self) -> None:
        try:
            while True:
                waits = [asyncio.ensure_future(self.wake.wait())]
                if self.relay is not None:
                    waits.append(asyncio.ensure_future(self.relay.wait()))
                timeout = None if self.inotify else POLL_SECONDS
                try:
                    await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waits:
                        waiter.cancel()
                if not self.inotify:
                    if self.relay is not None:
                        self.relay.clear()
                    self.names_dirty = True
                    self.dirty.update(self.told)
                await asyncio.sleep(SETTLE)  # a burst of changes: one report
                self.wake.clear()
                if not self.session.waiting:
                    continue  # in a command: told at its end (`report`)
                await self.session.notify_selected()
                self.report()
                await self.session.stream.drain()  # a client that does not read stops us
        except asyncio.CancelledError:
            raise
        except (ConnectionError, RuntimeError):
            return
        except Exception:
            log.exception("NOTIFY failed for %s", self.maildir)

    # --- what changed ----------------------------------------------------------------------

    def _selected_name(self) -> str | None:
        selected = self.session.selected
        return selected.name if selected is not None else None

    def _in_scope(self) -> list[str]:
        """The folders whose message events the client wants."""
        return [
            name
            for name in self.identities
            if self.spec.wants(name, self.subscribed, MESSAGE_EVENTS)
        ]

    def _counts(self, name: str) -> Counts | None:
        store = self.session.user_store
        try:
            index = store.open(name)
        except (FolderError, FolderGone, OSError):
            return None
        try:
            unseen = sum(1 for m in index.by_uid.values() if "S" not in m.info)
            return Counts(len(index), index.uidnext, index.uidvalidity, unseen, index.modseq)
        finally:
            store.close(index)

    def report(self) -> None:
        """Tell what changed since the last report (call between commands only)."""
        if self.overflowed:
            return
        if self.names_dirty:
            self.names_dirty = False
            self._report_names()
        dirty, self.dirty = self.dirty, set()
        selected = self._selected_name()
        for name in sorted(dirty):
            if name not in self.told:
                continue
            counts = self._counts(name)
            if counts is None:
                continue
            before, self.told[name] = self.told[name], counts
            if name != selected:  # the selected mailbox: EXISTS, EXPUNGE, FETCH instead
                self._report_counts(name, before, counts)

    def _report_counts(self, name: str, before: Counts, now: Counts) -> None:
        """STATUS with the items Dovecot sends for what happened."""

        def wants(*names: str) -> bool:
            return self.spec.wants(name, self.subscribed, frozenset(names))

        items: list[str] = []
        appended = now.uidnext > before.uidnext
        expunged = now.messages < before.messages + (now.uidnext - before.uidnext)
        if now.uidvalidity != before.uidvalidity:
            items = list(STATUS_ITEMS)
        elif (appended and wants("MessageNew")) or (expunged and wants("MessageExpunge")):
            items = ["MESSAGES", "UIDNEXT", "UNSEEN"]
        elif now.unseen != before.unseen and wants("FlagChange"):
            items = ["UNSEEN"]
        changed = now.modseq != before.modseq
        if self.session.condstore and changed and (items or wants("FlagChange")):
            items.append("HIGHESTMODSEQ")
        if items:
            self._send_status(name, now, items)

    def _send_status(self, name: str, counts: Counts, items: list[str]) -> None:
        values = {
            "MESSAGES": counts.messages,
            "UIDNEXT": counts.uidnext,
            "UIDVALIDITY": counts.uidvalidity,
            "UNSEEN": counts.unseen,
            "HIGHESTMODSEQ": counts.modseq,
        }
        shown = wire.astring(self.session.shown_name(name))
        text = " ".join(f"{item} {values[item]}" for item in items)
        self.session.send(b"* STATUS " + shown + f" ({text})".encode())

    def _report_names(self) -> None:
        """LIST for folders created, deleted, renamed, (un)subscribed; the scope follows."""
        now = folders.identities(self.maildir)
        subscribed = folders.subscribed(self.maildir, list(now))
        before, was_subscribed = self.identities, self.subscribed
        self.identities, self.subscribed = now, subscribed
        by_inode = {inode: name for name, inode in before.items() if name not in now}
        renamed: dict[str, str] = {}  # new -> old
        for name, inode in now.items():
            if name not in before and inode in by_inode:
                renamed[name] = by_inode.pop(inode)
        gone = set(by_inode.values())
        name_event = frozenset({"MailboxName"})
        for name in sorted(gone):
            if self.spec.wants(name, was_subscribed | {name}, name_event):
                self._send_list(name, ["\\NonExistent"])
        for name in now:
            if name in before:
                continue
            if self.spec.wants(name, subscribed, name_event):
                self._send_list(name, [], renamed.get(name))
        changes = frozenset({"SubscriptionChange"})
        moved = gone | set(renamed) | set(renamed.values())
        for name in sorted(subscribed ^ was_subscribed):
            if name in moved or (name not in now and name not in before):
                continue
            if self.spec.wants(name, subscribed | was_subscribed, changes):
                self._send_list(name, ["\\Subscribed"] if name in subscribed else [])
        for name in list(self.told):
            if name not in now:
                del self.told[name]
        for name in self._in_scope():
            if name not in self.told:
                counts = self._counts(name)
                if counts is not None:
                    self.told[name] = counts
        self._rewatch()

    def _send_list(self, name: str, attributes: list[str], old: str | None = None) -> None:
        line = f'* LIST ({" ".join(attributes)}) "/" '.encode()
        line += wire.astring(self.session.shown_name(name))
        if old is not None:
            line += b' ("OLDNAME" (' + wire.astring(self.session.shown_name(old)) + b"))"
        self.session.send(line)

    # --- the watches -----------------------------------------------------------------------

    def _rewatch(self) -> None:
        """inotify on the folders in scope (and the selected one when its events are
        wanted), nothing else; over MAX_WATCHED: NOTIFICATIONOVERFLOW, as NOTIFY NONE."""
        wanted = set(self.told)
        selected = self._selected_name()
        if selected is not None and self.spec.selected:
            wanted.add(selected)
        if len(wanted) > MAX_WATCHED:
            self.overflowed = True
            self.session.send("* OK [NOTIFICATIONOVERFLOW] Too many mailboxes to watch.")
            self.stop()
            return
        if not self.inotify:
            return
        for name in list(self.watched):
            if name not in wanted:
                self._unwatch(name)
        for name in wanted - set(self.watched):
            path = folders.path_of(self.maildir, name)
            event = _FolderEvent(self, name)
            if watch.watch(path, event):
                self.watched[name] = (path, event)

    def _unwatch(self, name: str) -> None:
        path, event = self.watched.pop(name)
        with contextlib.suppress(OSError, RuntimeError):
            watch.unwatch(path, event)

    def after_command(self) -> None:
        """The selected mailbox may have changed: watch what is wanted now."""
        if not self.overflowed:
            self._rewatch()
