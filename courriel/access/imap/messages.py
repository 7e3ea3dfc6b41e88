"""IMAP commands on the messages of the selected mailbox: FETCH, STORE, SEARCH, COPY,
MOVE, EXPUNGE, CLOSE, UNSELECT, CHECK — and `sync`, which tells the client what changed
(new mail, expunges, flags, keywords). A mixin of `session.ImapSession`.

Messages another session expunged are still answered (see `view`): FETCH gives their
flags and NIL for their content with `OK [EXPUNGEISSUED]`, STORE changes them in the
client's view only; COPY and MOVE refuse the whole set (nothing is copied) with
`NO [EXPUNGEISSUED]` and report the expunges, as Dovecot does.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from courriel.access.imap import fetch, mime, qresync
from courriel.access.imap.errors import Bad, No
from courriel.access.imap.parser import SAVED, STAR, FetchAtt, SequenceSet
from courriel.access.imap.search import save_date
from courriel.access.imap.view import Selected, uid_set
from courriel.inbound.learning import note_move
from courriel.mailstore import folders
from courriel.mailstore.events import events
from courriel.mailstore.folders import FolderError
from courriel.mailstore.index import Message
from courriel.mailstore.message_file import MessageFile

if TYPE_CHECKING:
    from courriel.access.imap.parser import Command
    from courriel.access.listener import Stream
    from courriel.mailstore.store import UserStore

BATCH = 4096  # messages formatted at a time by the FETCH of flags


class MessageCommands:
    stream: Stream
    selected: Selected | None
    origin: int
    condstore: bool
    qresync: bool
    rev2: bool

    if TYPE_CHECKING:

        @property
        def user_store(self) -> UserStore: ...

        def send(self, line: str | bytes) -> None: ...

        def unselect(self) -> None: ...

        def send_flags(self, selected: Selected) -> None: ...

        def search_updates(self) -> None: ...

    @property
    def sel(self) -> Selected:
        assert self.selected is not None
        return self.selected

    # --- simple ones -----------------------------------------------------------------------

    async def cmd_check(self, command: Command) -> str:
        return "CHECK completed."

    async def cmd_close(self, command: Command) -> str:
        selected = self.sel
        if not selected.readonly:
            deleted = self._deleted(None)
            selected.index.expunge(deleted, self.origin)
            if deleted:
                events.notify(self.user_store.maildir)
        self.unselect()
        return "CLOSE completed."

    async def cmd_unselect(self, command: Command) -> str:
        self.unselect()
        return "UNSELECT completed."

    def _deleted(self, restrict: set[int] | None) -> list[Message]:
        by_uid = self.sel.index.by_uid
        return [
            by_uid[uid]
            for uid in self.sel.view
            if uid in by_uid and "T" in by_uid[uid].info and (restrict is None or uid in restrict)
        ]

    async def cmd_expunge(self, command: Command) -> str:
        selected = self.sel
        if selected.readonly:
            raise No("The mailbox is open read-only (EXAMINE).", "READ-ONLY")
        restrict = None
        if command.uid:
            restrict = {uid for _, uid in self.targets(command.args["set"], True)}
        if selected.index.expunge(self._deleted(restrict), self.origin):
            events.notify(self.user_store.maildir)
        return "EXPUNGE completed."

    # --- sequence sets ---------------------------------------------------------------------

    def resolve(self, ranges: SequenceSet, uid: bool) -> Sequence[int]:
        """Positions in the session's view (0-based, in order) of the messages a set
        designates: a `range` for the usual single range, so that `1:*` on a big folder
        builds no list (nor objects for the garbage collector to walk)."""
        view = self.sel.view
        if ranges == [(SAVED, SAVED)]:  # "$": the saved search result (RFC 5182)
            saved = set(self.sel.saved)
            return [position for position, known in enumerate(view) if known in saved]
        count = len(view)
        largest = (view[-1] if view else 0) if uid else count
        picked: list[range] = []
        for first, last in ranges:
            low = largest if first == STAR else first
            high = largest if last == STAR else last
            if low > high:
                low, high = high, low
            if uid:
                picked.append(range(bisect.bisect_left(view, low), bisect.bisect_right(view, high)))
            elif high > count or low < 1:
                raise Bad(f"Invalid message sequence number (the mailbox has {count} messages).")
            else:
                picked.append(range(low - 1, high))
        return picked[0] if len(picked) == 1 else sorted(set().union(*picked))

    def targets(self, ranges: SequenceSet, uid: bool) -> Iterator[tuple[int, int]]:
        """(sequence number, uid) of the messages a set designates, in order."""
        view = self.sel.view
        for position in self.resolve(ranges, uid):
            yield position + 1, view[position]

    # --- FETCH -----------------------------------------------------------------------------

    async def cmd_fetch(self, command: Command) -> str:
        selected = self.sel
        items: list[FetchAtt] = list(command.args["items"])
        if command.uid and not any(i.name == "UID" for i in items):
            items.insert(0, FetchAtt("UID"))
        positions = self.resolve(command.args["set"], command.uid)
        since = command.args.get("changedsince")
        if since is not None or any(i.name == "MODSEQ" for i in items):
            self.condstore = True
        if command.args.get("vanished"):  # RFC 7162 3.2.6: what vanished since, first
            if not command.uid or not self.qresync:
                raise Bad("VANISHED needs UID FETCH and ENABLE QRESYNC.")
            gone = qresync.vanished_since(selected.index, since, command.args["set"])
            if gone:
                self.send(f"* VANISHED (EARLIER) {qresync.text(gone)}")
        if since is not None:  # RFC 7162: only what changed after, with its MODSEQ
            if not any(i.name == "MODSEQ" for i in items):
                items.append(FetchAtt("MODSEQ"))
            view, lookup = selected.view, selected.lookup
            positions = [p for p in positions if (m := lookup(view[p])) is None or m.modseq > since]
        items = fetch.in_answer_order(items)
        if {i.name for i in items} <= {"UID", "FLAGS", "MODSEQ"}:  # what synchronisers ask
            await self._fetch_flags(positions, [i.name for i in items])
            return "FETCH completed."
        lost = False
        view = selected.view
        sets_seen = not selected.readonly and any(i.sets_seen for i in items)
        wants_data = any(fetch.needs_data(i) for i in items)
        for position in positions:
            message = selected.lookup(view[position])
            if message is None:  # gone, and not even a ghost (a very old session)
                lost = True
                continue
            data = selected.index.source(message) if wants_data else None
            if wants_data and data is None:
                lost = True  # expunged by another session: NIL for its content
            try:
                pieces = self._render_or_refuse(position + 1, message, items, data, sets_seen)
                await self._write_pieces(pieces)
            finally:
                if isinstance(data, MessageFile):
                    data.close()
        if lost:
            return "[EXPUNGEISSUED] Some messages were already expunged."
        return "FETCH completed."

    def _render_or_refuse(self, *args: object) -> list[fetch.Piece]:
        try:
            return self._render(*args)  # type: ignore[arg-type]
        except fetch.UnknownEncoding as error:
            raise No(f"Unknown Content-Transfer-Encoding {error}.", "UNKNOWN-CTE") from None

    async def _fetch_flags(self, positions: Sequence[int], order: list[str]) -> None:
        """FETCH of UID, FLAGS and MODSEQ only (in any order), 4,096 messages at a time:
        each batch is one `%` over a repeated line with the values gathered by `map`,
        and the flag lists formatted once per combination of flags, so that the
        interpreter does no per-message formatting."""
        selected = self.sel
        view, get, recent = selected.view, selected.index.by_uid.get, selected.recent
        line = b"* %d FETCH (" + b" ".join(_FORMATS[name] for name in order) + b")\r\n"
        flags = _InfoFlags(selected.index, False)
        recent_flags = _InfoFlags(selected.index, True)
        for start in range(0, len(positions), BATCH):
            part = positions[start : start + BATCH]
            if isinstance(part, range):
                uids = view[part.start : part.stop]
                numbers: Iterable[int] = range(part.start + 1, part.stop + 1)
            else:
                uids = [view[p] for p in part]
                numbers = [p + 1 for p in part]
            messages = list(map(get, uids))
            if None in messages:  # expunged by another session: from the ghosts
                found = [
                    (n, m or selected.lookup(u))
                    for n, m, u in zip(numbers, messages, uids, strict=True)
                ]
                numbers = [n for n, m in found if m is not None]
                messages = [m for _n, m in found if m is not None]
            columns: list[Iterable[object]] = [numbers]
            for name in order:
                if name == "UID":
                    columns.append(map(_UID, messages))
                elif name == "MODSEQ":
                    columns.append(map(_MODSEQ, messages))
                elif recent:
                    columns.append(
                        (recent_flags if m.uid in recent else flags)[m.info] for m in messages
                    )
                else:
                    columns.append(map(flags.__getitem__, map(_INFO, messages)))
            values = tuple(itertools.chain.from_iterable(zip(*columns, strict=True)))
            self.stream.write(line * len(messages) % values)
            await self.stream.pace()

    async def _write_pieces(self, pieces: list[fetch.Piece]) -> None:
        """A FETCH response: in one write when it is all in memory; a big message's
        content chunk by chunk, waiting for the client when the socket is full."""
        if all(isinstance(piece, bytes) for piece in pieces):
            self.stream.write(b"".join(pieces))  # type: ignore[arg-type]
            await self.stream.pace()
            return
        for piece in pieces:
            if isinstance(piece, bytes):
                self.stream.write(piece)
                continue
            for chunk in piece.chunks():
                self.stream.write(chunk)
                await self.stream.pace()

    def _render(
        self,
        position: int,
        message: Message,
        items: list[FetchAtt],
        data: fetch.Source | None,
        sets_seen: bool,
    ) -> list[fetch.Piece]:
        index = self.sel.index
        flags_changed = False
        ghost = message.uid not in index.by_uid
        if sets_seen and "S" not in message.info and not ghost:
            flags_changed = index.set_info(
                message, "".join(sorted(message.info + "S")), self.origin
            )
        root = None
        if data is not None and any(fetch.needs_structure(i) for i in items):
            root = mime.parse(data)
        parts: list[fetch.Piece] = []
        for item in items:
            name = item.name
            if name == "UID":
                parts.append(b"UID %d" % message.uid)
            elif name == "FLAGS":
                parts.append(fetch.flags_item(self._flags(message)))
            elif name == "INTERNALDATE":
                parts.append(
                    b"INTERNALDATE " + fetch.wire.internaldate(index.internaldate(message))
                )
            elif name == "RFC822.SIZE":
                size = len(data) if data is not None else index.size(message)
                parts.append(b"RFC822.SIZE %d" % size)
            elif name == "MODSEQ":
                parts.append(b"MODSEQ (%d)" % message.modseq)
            elif name == "SAVEDATE":  # RFC 8514
                saved = save_date(message)
                parts.append(b"SAVEDATE " + (fetch.wire.internaldate(saved) if saved else b"NIL"))
            elif name == "ENVELOPE":  # from the header only, kept by the folder index
                parts.append(
                    b"ENVELOPE "
                    + index.header_summary(message, _ENVELOPE, fetch.envelope_of_header)
                )
            elif data is None:  # content of a message expunged meanwhile
                parts.append(item.label.encode() + b" " + fetch.nil_reply(item))
            elif name in ("BODY", "BODYSTRUCTURE"):
                assert root is not None
                parts.append(
                    name.encode()
                    + b" "
                    + fetch.body_structure(data, root, name == "BODYSTRUCTURE", self.rev2)
                )
            elif name in ("BINARY[]", "BINARY.SIZE"):
                assert root is not None
                parts.extend(fetch.binary_item(data, root, item))
            else:
                parts.extend(fetch.body_item(data, root, item))
            parts.append(b" ")
        if flags_changed and not any(i.name == "FLAGS" for i in items):
            # after the other short items, before the contents (as Dovecot)
            at = 2 * sum(1 for i in items if i.name in fetch.BUFFERED)
            parts[at:at] = [fetch.flags_item(self._flags(message)), b" "]
        if flags_changed and self.condstore and not any(i.name == "MODSEQ" for i in items):
            parts += [b"MODSEQ (%d)" % message.modseq, b" "]
        if parts and parts[-1] == b" ":
            parts.pop()
        return [b"* %d FETCH (" % position, *parts, b")\r\n"]

    def _modseq_item(self, message: Message) -> bytes:
        """`MODSEQ (n) ` in FETCH responses about changed flags, once CONDSTORE is on."""
        return b"MODSEQ (%d) " % message.modseq if self.condstore else b""

    def _flags(self, message: Message) -> list[str]:
        return self.sel.index.flag_names(message.info, message.uid in self.sel.recent)

    # --- STORE -----------------------------------------------------------------------------

    async def cmd_store(self, command: Command) -> str:
        selected = self.sel
        args = command.args
        since = args["unchangedsince"]
        if since is not None:
            self.condstore = True
        if selected.readonly:  # as Dovecot: nothing to store, nothing to fail
            if since is not None:
                raise No("CONDSTORE failed: the mailbox is open read-only.", "READ-ONLY")
            return "STORE ignored: the mailbox is open read-only (EXAMINE)."
        index = selected.index
        wanted = [f for f in args["flags"] if f.lower() != "\\recent"]
        if any(f.startswith("\\") and f.lower() not in _SYSTEM_LOWER for f in wanted):
            raise Bad("Unknown system flag.")
        letters = set(index.letters(wanted, create=args["mode"] != "-"))
        self.announce_keywords()
        modified: list[int] = []  # RFC 7162: changed by someone after UNCHANGEDSINCE
        out = []
        with index.changes():  # one write of the new mod-sequences for the command
            for position, uid in self.targets(args["set"], command.uid):
                message = selected.lookup(uid)
                if message is None:
                    continue
                if since is not None and message.modseq > since:
                    modified.append(uid if command.uid else position)
                    continue
                current = set(message.info)
                if args["mode"] == "+":
                    new = current | letters
                elif args["mode"] == "-":
                    new = current - letters
                else:
                    new = {c for c in current if c == "P" or not c.isalpha()} | letters
                info = "".join(sorted(new))
                if info == message.info:
                    continue  # nothing changes: no FETCH (as Dovecot), no new MODSEQ
                before = message.modseq
                if uid in index.by_uid:
                    if not index.set_info(message, info, self.origin):
                        continue
                else:  # a ghost: changed in this client's view only
                    message.info = info
                uid_part = b"UID %d " % uid if command.uid or self.condstore else b""
                if not args["silent"]:
                    out.append(
                        b"* %d FETCH (%s%s%s)\r\n"
                        % (
                            position,
                            uid_part,
                            self._modseq_item(message),
                            fetch.flags_item(self._flags(message)),
                        )
                    )
                elif self.condstore and message.modseq != before:  # the client's cache
                    out.append(
                        b"* %d FETCH (%sMODSEQ (%d))\r\n" % (position, uid_part, message.modseq)
                    )
        self.stream.write(b"".join(out))
        events.notify(self.user_store.maildir)
        if modified:
            return f"[MODIFIED {uid_set(modified)}] Conditional STORE failed for some messages."
        return "STORE completed."

    def announce_keywords(self) -> None:
        """A keyword new to the folder (from this session or another) is announced with
        `* FLAGS` before any FETCH shows it."""
        selected = self.sel
        current = selected.current_keywords()
        if current != selected.keywords:
            selected.keywords = current
            self.send_flags(selected)

    # --- COPY / MOVE -----------------------------------------------------------------------

    async def cmd_copy(self, command: Command, move: bool = False) -> str:
        selected = self.sel
        if move and selected.readonly:
            raise No("The mailbox is open read-only (EXAMINE).", "READ-ONLY")
        name = folders.normalize(command.args["mailbox"])
        try:
            target = self.user_store.open(name)
        except FolderError:
            raise No(f"Mailbox {name} does not exist: create it first.", "TRYCREATE") from None
        try:
            uids = [uid for _, uid in self.targets(command.args["set"], command.uid)]
            by_uid = selected.index.by_uid
            if any(uid not in by_uid for uid in uids):  # all or nothing (RFC 3501 6.4.7)
                raise No(
                    "Some of the requested messages no longer exist.", "EXPUNGEISSUED", sync=True
                )
            messages = [by_uid[uid] for uid in uids]
            note_move(selected.name, name, selected.index, messages)
            if move:
                pairs = self.user_store.move(selected.index, messages, target, self.origin)
            else:
                pairs = self.user_store.copy(selected.index, messages, target)
            validity = target.uidvalidity
        finally:
            self.user_store.close(target)
        events.notify(self.user_store.maildir)
        verb = "MOVE" if move else "COPY"
        if not pairs:
            if uids:
                raise No(
                    "Some of the requested messages no longer exist.", "EXPUNGEISSUED", sync=True
                )
            return f"{verb} completed (nothing to do)."
        code = (
            f"COPYUID {validity} {uid_set([s for s, _ in pairs])} {uid_set([d for _, d in pairs])}"
        )
        if move:
            self.send(f"* OK [{code}] Moved.")
            return f"{verb} completed."
        return f"[{code}] {verb} completed."

    async def cmd_move(self, command: Command) -> str:
        return await self.cmd_copy(command, move=True)

    # --- telling the client what changed ---------------------------------------------------

    async def sync(self, expunges: bool) -> bool:
        """Untagged EXPUNGE / EXISTS / RECENT / FLAGS / FETCH for the changes the client
        has not heard of (by others, by delivery, or expunges by this very session).
        True if expunges were reported."""
        selected = self.selected
        if selected is None:
            return False
        reported = False
        selected.absorb(self.origin)
        index = selected.index
        view = selected.view
        out: list[bytes] = []
        if expunges and selected.pending_expunges:
            vanished = []
            for uid in sorted(selected.pending_expunges, reverse=True):
                position = bisect.bisect_left(view, uid)
                if position < len(view) and view[position] == uid:
                    del view[position]
                    out.append(b"* %d EXPUNGE\r\n" % (position + 1))
                    vanished.append(uid)
                selected.recent.discard(uid)
                selected.changed.discard(uid)
            reported = bool(vanished)
            if self.qresync and vanished:  # RFC 7162 3.2.10: VANISHED replaces EXPUNGE
                out = [b"* VANISHED %s\r\n" % uid_set(sorted(vanished)).encode()]
            selected.pending_expunges.clear()
            selected.ghosts.clear()
        start = bisect.bisect_right(index.uids, selected.max_uid)
        new = index.uids[start:]
        if new:
            view.extend(new)
            selected.max_uid = new[-1]
            if not self.rev2:  # RFC 9051 has no \Recent
                if selected.readonly:  # EXAMINE shows recent messages without taking them
                    selected.recent.update(u for u in new if u >= index.first_recent_uid)
                else:
                    selected.recent.update(index.claim_recent())
            out.append(b"* %d EXISTS\r\n" % len(view))
        if len(selected.recent) != selected.recent_told:
            out.append(b"* %d RECENT\r\n" % len(selected.recent))
            selected.recent_told = len(selected.recent)
        if out:
            self.stream.write(b"".join(out))
            out = []
        self.announce_keywords()
        for uid in sorted(selected.changed):
            position = bisect.bisect_left(view, uid)
            message = selected.lookup(uid)
            if position < len(view) and view[position] == uid and message is not None:
                # RFC 9051 7.5.2: every unsolicited FETCH has the UID in IMAP4rev2
                uid_part = b"UID %d " % uid if self.condstore or self.rev2 else b""
                out.append(
                    b"* %d FETCH (%s%s%s)\r\n"
                    % (
                        position + 1,
                        uid_part,
                        self._modseq_item(message),
                        fetch.flags_item(self._flags(message)),
                    )
                )
        selected.changed.clear()
        if out:
            self.stream.write(b"".join(out))
        self.search_updates()
        return reported


_FORMATS = {"UID": b"UID %d", "FLAGS": b"%s", "MODSEQ": b"MODSEQ (%d)"}
_ENVELOPE = "\0envelope"  # header cache key
_SYSTEM_LOWER = {"\\answered", "\\flagged", "\\deleted", "\\seen", "\\draft"}


_UID = operator.attrgetter("uid")
_MODSEQ = operator.attrgetter("modseq")
_INFO = operator.attrgetter("info")


class _InfoFlags(dict[str, bytes]):
    """`FLAGS (...)` bytes per flag letters of a file name (with or without \\Recent):
    thousands of messages share a few combinations."""

    def __init__(self, index: object, recent: bool) -> None:
        super().__init__()
        self.index = index
        self.recent = recent

    def __missing__(self, info: str) -> bytes:
        value = self[info] = fetch.flags_item(self.index.flag_names(info, self.recent))  # type: ignore[attr-defined]
        return value
