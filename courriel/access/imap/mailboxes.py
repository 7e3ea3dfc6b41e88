"""IMAP commands about mailboxes as a whole: SELECT/EXAMINE, CREATE, DELETE, RENAME,
SUBSCRIBE, LIST/LSUB, NAMESPACE, STATUS, APPEND, IDLE and QUOTA. A mixin of
`session.ImapSession`, which holds the state these methods use."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

from courriel.access import auth
from courriel.access.imap import fetch, listing, mime, qresync, urls, wire
from courriel.access.imap.errors import Bad, No
from courriel.access.imap.parser import STATUS_ITEMS, Command, SequenceSet
from courriel.access.imap.view import Selected, uid_set
from courriel.mailstore import folders, metadata, watch
from courriel.mailstore import index as folder_index
from courriel.mailstore.events import events
from courriel.mailstore.folders import FolderError
from courriel.mailstore.index import FolderIndex
from courriel.mailstore.message_file import MessageFile
from courriel.mailstore.spool import Spool, as_spool
from courriel.mailstore.store import OverQuota

if TYPE_CHECKING:
    from courriel.access.auth import AccessSettings, Login
    from courriel.access.listener import Stream
    from courriel.mailstore.store import UserStore

SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"
IDLE_CHECK = 30.0  # seconds between directory checks while idling (inotify: a safety net)


class MailboxCommands:
    # What the session provides (see session.ImapSession).
    stream: Stream
    settings: AccessSettings
    login: Login | None
    selected: Selected | None
    origin: int
    condstore: bool
    qresync: bool
    utf8: bool
    rev2: bool
    state: str
    waiting: bool

    if TYPE_CHECKING:

        @property
        def user_store(self) -> UserStore: ...

        def send(self, line: str | bytes) -> None: ...

        def unselect(self) -> None: ...

        async def sync(self, expunges: bool) -> None: ...

        @property
        def append_limit(self) -> int: ...

        def shown_name(self, name: str) -> str: ...

        @property
        def utf8_names(self) -> bool: ...

    # --- SELECT / EXAMINE ------------------------------------------------------------------

    async def cmd_select(self, command: Command, readonly: bool = False) -> str:
        resync = command.args.get("qresync")
        if resync is not None and not self.qresync:
            raise Bad("Enable QRESYNC first (ENABLE QRESYNC).")
        if self.selected is not None:
            self.unselect()
            self.send("* OK [CLOSED] Previous mailbox closed.")
        name = folders.normalize(command.args["mailbox"])
        if command.args.get("condstore"):
            self.condstore = True
        index = self.user_store.open(name)
        if self.rev2:  # RFC 9051: no \Recent; left for the next IMAP4rev1 session
            recent: set[int] = set()
        else:
            recent = (
                set(index.recent_uids())
                if readonly
                else set(index.claim_recent(folder_index.CLAIM_AT_ONCE))
            )
        view = list(index.uids)
        selected = Selected(
            name, index, readonly, view, recent, index.modseq, view[-1] if view else 0
        )
        selected.keywords = selected.current_keywords()
        selected.recent_told = len(recent)
        self.selected = selected
        self.send_flags(selected)
        self.send(f"* {len(view)} EXISTS")
        if self.rev2:  # RFC 9051 6.3.2: the mailbox's LIST; RECENT and UNSEEN are gone
            self.send(self._list_line("LIST", self._entry(name)))
        else:
            self.send(f"* {len(recent)} RECENT")
            by_uid = index.by_uid
            for position, uid in enumerate(view, 1):
                if "S" not in by_uid[uid].info:
                    self.send(f"* OK [UNSEEN {position}] First unseen.")
                    break
        self.send(f"* OK [UIDVALIDITY {index.uidvalidity}] UIDs valid.")
        self.send(f"* OK [UIDNEXT {index.uidnext}] Predicted next UID.")
        self.send(f"* OK [HIGHESTMODSEQ {index.modseq}] Highest mod-sequence.")
        self.state = "selected"
        if not readonly and not self.rev2:
            folder_index.claim_later(index)  # what the SELECT left in new/
        if resync is not None and resync["uidvalidity"] == index.uidvalidity:
            self._resynchronise(selected, resync["modseq"], resync["known"])
        mode = "READ-ONLY" if readonly else "READ-WRITE"
        return f"[{mode}] {'EXAMINE' if readonly else 'SELECT'} completed."

    def _resynchronise(self, selected: Selected, modseq: int, known: SequenceSet | None) -> None:
        """QRESYNC at SELECT: what vanished and what changed since the client's state."""
        gone = qresync.vanished_since(selected.index, modseq, known)
        if gone:
            self.send(f"* VANISHED (EARLIER) {qresync.text(gone)}")
        by_uid = selected.index.by_uid
        for position, uid in enumerate(selected.view, 1):
            message = by_uid[uid]
            if message.modseq > modseq:
                flags = selected.index.flag_names(message.info, uid in selected.recent)
                self.send(
                    f"* {position} FETCH (UID {uid} FLAGS ({' '.join(flags)})"
                    f" MODSEQ ({message.modseq}))"
                )

    async def cmd_examine(self, command: Command) -> str:
        return await self.cmd_select(command, readonly=True)

    def send_flags(self, selected: Selected) -> None:
        """`* FLAGS` and PERMANENTFLAGS with the folder's keywords (at SELECT, and
        whenever a keyword appears, before any FETCH uses it: RFC 3501 7.2.6)."""
        keywords = " ".join(selected.keywords)
        flags = f"{SYSTEM_FLAGS} {keywords}".strip()
        self.send(f"* FLAGS ({flags})")
        if selected.readonly:
            self.send("* OK [PERMANENTFLAGS ()] Read-only mailbox.")
        else:
            self.send(f"* OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted.")

    # --- the hierarchy ---------------------------------------------------------------------

    async def cmd_create(self, command: Command) -> str:
        name = command.args["mailbox"].rstrip(folders.SEPARATOR)
        self.user_store.create(name, _special_use(command.args["use"]))
        return "CREATE completed."

    async def cmd_delete(self, command: Command) -> str:
        name = folders.normalize(command.args["mailbox"])
        if self.selected is not None and self.selected.name == name:
            self.unselect()
        try:
            self.user_store.delete(name)
        except FolderError as error:
            if self.rev2 and error.code == "INUSE":  # RFC 9051 6.3.5
                error.code = "HASCHILDREN"
            raise
        return "DELETE completed."

    async def cmd_rename(self, command: Command) -> str:
        old = folders.normalize(command.args["old"])
        if (
            self.selected is not None
            and (self.selected.name == old or self.selected.name.startswith(old + "/"))
            and old != "INBOX"
        ):
            self.unselect()
        self.user_store.rename(old, command.args["new"])
        return "RENAME completed."

    async def cmd_subscribe(self, command: Command, on: bool = True) -> str:
        name = folders.normalize(command.args["mailbox"])
        if on and name not in self.user_store.names():
            raise No(f"Mailbox {name} does not exist.", "NONEXISTENT")
        self.user_store.subscribe(name, on)
        return f"{'SUBSCRIBE' if on else 'UNSUBSCRIBE'} completed."

    async def cmd_unsubscribe(self, command: Command) -> str:
        return await self.cmd_subscribe(command, on=False)

    async def cmd_list(self, command: Command, lsub: bool = False) -> str:
        args = command.args
        verb = "LSUB" if lsub else "LIST"
        if not lsub and not args["extended"] and args["patterns"] == [""]:
            self.send('* LIST (\\Noselect) "/" ""')
            return "LIST completed."
        try:
            request = listing.ListRequest(
                lsub,
                args["reference"],
                args["patterns"],
                args["select"],
                args["return"],
                args["status"],
                args["extended"],
                self.rev2,
            )
        except listing.ListError as error:
            raise Bad(str(error)) from None
        unknown = set(request.returns) - {"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"}
        if unknown:
            raise Bad("Unknown return options.")
        existing = self.user_store.names()
        entries = listing.list_mailboxes(
            request,
            existing,
            folders.subscribed(self.user_store.maildir, existing),
            self.user_store.special_uses().get,
        )
        for entry in entries:
            self.send(self._list_line(verb, entry))
            if request.status and entry.selectable:
                self.send(self.status_line(entry.name, request.status))
        return f"{verb} completed."

    def _list_line(self, verb: str, entry: listing.Entry) -> bytes:
        line = f'* {verb} ({" ".join(entry.attributes)}) "/" '.encode()
        line += wire.astring(self.shown_name(entry.name))
        for info in entry.childinfo:
            line += f' (CHILDINFO ("{info}"))'.encode()
        return line

    def _entry(self, name: str) -> listing.Entry:
        """The mailbox as a plain LIST shows it (for SELECT's LIST in IMAP4rev2)."""
        existing = self.user_store.names()
        return listing.entry(name, existing, self.user_store.special_uses().get)

    async def cmd_lsub(self, command: Command) -> str:
        return await self.cmd_list(command, lsub=True)

    async def cmd_namespace(self, command: Command) -> str:
        self.send('* NAMESPACE (("" "/")) NIL NIL')
        return "NAMESPACE completed."

    # --- STATUS ----------------------------------------------------------------------------

    async def cmd_status(self, command: Command) -> str:
        name = folders.normalize(command.args["mailbox"])
        self.send(self.status_line(name, command.args["items"]))
        if self.selected is not None and self.selected.name == name:
            return "[CLIENTBUG] STATUS on the selected mailbox completed."
        return "STATUS completed."

    def status_line(self, name: str, items: list[str]) -> bytes:
        """`* STATUS name (...)`, items in Dovecot's order whatever the request's."""
        index = self.user_store.open(name)
        try:
            values = []
            for item in STATUS_ITEMS:
                if item not in items:
                    continue
                values.append(f"{item} {self._status_value(index, item)}")
        finally:
            self.user_store.close(index)
        shown = wire.astring(self.shown_name(name))
        return b"* STATUS " + shown + f" ({' '.join(values)})".encode()

    def _status_value(self, index: FolderIndex, item: str) -> int:
        if item == "MESSAGES":
            return len(index)
        if item == "RECENT":
            return len(index.recent_uids())
        if item == "UIDNEXT":
            return index.uidnext
        if item == "UIDVALIDITY":
            return index.uidvalidity
        if item == "UNSEEN":
            return sum(1 for m in index.by_uid.values() if "S" not in m.info)
        if item == "DELETED":  # RFC 9051
            return sum(1 for m in index.by_uid.values() if "T" in m.info)
        if item == "HIGHESTMODSEQ":
            self.condstore = True
            return index.modseq
        return sum(index.size(m) for m in index.by_uid.values())  # SIZE (RFC 8438)

    # --- APPEND ----------------------------------------------------------------------------

    def check_append(self, mailbox: str, size: int) -> None:
        """Before a message is sent: its mailbox exists and it fits in the quota."""
        if self.utf8_names:
            mailbox = folders.encode_mutf7(mailbox)
        name = folders.normalize(mailbox)
        if not folders.exists(self.user_store.maildir, name):
            raise No(f"Mailbox {name} does not exist: create it first.", "TRYCREATE")
        try:
            self.user_store.check_room(size)
        except OverQuota as error:
            raise No(str(error), "OVERQUOTA") from None

    async def cmd_append(self, command: Command) -> str:
        """APPEND of one message or several (MULTIAPPEND, RFC 3502: all or none),
        each already on disk in `tmp/` (see `reader`)."""
        args = command.args
        name = folders.normalize(args["mailbox"])
        try:
            index = self.user_store.open(name)
        except FolderError:
            raise No(f"Mailbox {name} does not exist: create it first.", "TRYCREATE") from None
        maildir = self.user_store.maildir
        try:
            spools = [
                self._catenate(message["catenate"])
                if "catenate" in message
                else as_spool(maildir, message["data"])
                for message in args["messages"]
            ]
            if any(spool.has_nul for spool in spools):  # RFC 3516 4.4
                raise No("Binary content (NUL bytes) cannot be stored here.", "UNKNOWN-CTE")
            try:
                self.user_store.check_room(sum(spool.size for spool in spools))
            except OverQuota as error:
                raise No(str(error), "OVERQUOTA") from None
            for spool in spools:
                await asyncio.to_thread(spool.finish)  # fsync away from the event loop
            uids: list[int] = []
            try:
                for message, spool in zip(args["messages"], spools, strict=True):
                    letters = index.letters(message["flags"], create=True)
                    uids.append(
                        self.user_store.append(index, name, spool, letters, message["date"])
                    )
            except BaseException:
                self.user_store.remove(index, uids)  # all or none
                raise
            validity = index.uidvalidity
        finally:
            self.user_store.close(index)
        events.notify(maildir)
        return f"[APPENDUID {validity} {uid_set(uids)}] APPEND completed."

    def _catenate(self, parts: list[tuple[str, object]]) -> Spool:
        """CATENATE (RFC 4469): a new message from TEXT literals and IMAP URLs of the
        user's messages (or their parts), written to tmp/ piece by piece."""
        spool = Spool(self.user_store.maildir)
        try:
            for kind, value in parts:
                if kind == "TEXT":
                    text = as_spool(self.user_store.maildir, value)  # type: ignore[arg-type]
                    for chunk in text.chunks():
                        spool.write(chunk)
                    text.discard()
                else:
                    for chunk in self._url_content(str(value)):
                        spool.write(chunk)
                if spool.size > self.append_limit:
                    raise No("The message would be too big.", "TOOBIG")
        except BaseException:
            spool.discard()
            raise
        return spool

    def _url_content(self, url: str) -> Iterator[bytes]:
        """The bytes an IMAP URL designates, in chunks (NO [BADURL] when it designates
        nothing of this user's)."""
        try:
            parsed = urls.parse(url)
            if parsed.mailbox is not None:
                name = folders.normalize(folders.encode_mutf7(parsed.mailbox))
            elif self.selected is not None:
                name = self.selected.name
            else:
                raise urls.BadUrl(url)
            index = self.user_store.open(name)
        except (urls.BadUrl, FolderError):
            raise No(f"Bad URL {url}.", f"BADURL {url}") from None
        try:
            message = index.by_uid.get(parsed.uid)
            if message is None or parsed.uidvalidity not in (None, index.uidvalidity):
                raise No(f"Bad URL {url}.", f"BADURL {url}")
            data = index.source(message)
            if data is None:
                raise No(f"Bad URL {url}.", f"BADURL {url}")
            try:
                span: bytes | tuple[int, int] = (0, len(data))
                if parsed.section is not None and (parsed.section.part or parsed.section.text):
                    span = fetch.section(data, mime.parse(data), parsed.section)
                if isinstance(span, bytes):
                    span_bytes = span
                    if parsed.partial is not None:
                        offset, length = parsed.partial
                        span_bytes = span_bytes[offset : offset + length]
                    yield span_bytes
                    return
                start, end = span
                if parsed.partial is not None:
                    start = min(start + parsed.partial[0], end)
                    end = min(start + parsed.partial[1], end)
                piece = fetch.content(data, (start, end))
                if isinstance(piece, bytes):
                    yield piece
                else:
                    yield from piece.chunks()
            finally:
                if isinstance(data, MessageFile):
                    data.close()
        finally:
            self.user_store.close(index)

    # --- METADATA (RFC 5464) ---------------------------------------------------------------

    def _metadata_mailbox(self, name: str) -> str:
        """ "" (the server) or an existing mailbox."""
        if name == "":
            return ""
        name = folders.normalize(name)
        if name not in self.user_store.names():
            raise No(f"Mailbox {name} does not exist.", "NONEXISTENT")
        return name

    async def cmd_getmetadata(self, command: Command) -> str:
        args = command.args
        mailbox = self._metadata_mailbox(args["mailbox"])
        stored = metadata.get(self.user_store.maildir, mailbox)
        if mailbox and metadata.SPECIAL_USE not in stored:  # Sent, Drafts...: by name
            use = self.user_store.special_uses().get(mailbox)
            if use:
                stored = {**stored, metadata.SPECIAL_USE: use}
        found: list[tuple[str, str | None]] = []
        for entry in args["entries"]:
            if args["depth"] == "0":
                found.append((entry, stored.get(entry)))
                continue
            prefix = entry + "/"
            for name in sorted(stored):
                below = name[len(prefix) :] if name.startswith(prefix) else None
                if name == entry or (
                    below is not None and (args["depth"] == "infinity" or "/" not in below)
                ):
                    found.append((name, stored[name]))
        longest = 0
        maxsize = args["maxsize"]
        if maxsize is not None:
            kept = []
            for name, value in found:
                size = len(value.encode("utf-8")) if value is not None else 0
                if size > maxsize:
                    longest = max(longest, size)
                else:
                    kept.append((name, value))
            found = kept
        if found:
            values = b" ".join(
                name.encode() + b" " + (_literal(value) if value is not None else b"NIL")
                for name, value in found
            )
            shown = wire.astring(self.shown_name(mailbox))
            self.send(b"* METADATA " + shown + b" (" + values + b")")
        if longest:
            return f"[METADATA LONGENTRIES {longest}] GETMETADATA completed."
        return "GETMETADATA completed."

    async def cmd_setmetadata(self, command: Command) -> str:
        mailbox = self._metadata_mailbox(command.args["mailbox"])
        changes = dict(command.args["changes"])
        if metadata.SPECIAL_USE in changes:  # RFC 6154 4: the special use, checked
            if not mailbox:
                raise No("The server has no special use.", "CANNOT")
            value = changes[metadata.SPECIAL_USE]
            changes[metadata.SPECIAL_USE] = _special_use(value.split() if value else [])
        try:
            metadata.update(self.user_store.maildir, mailbox, changes)
        except metadata.MetadataError as error:
            raise No(str(error), error.code) from None
        return "SETMETADATA completed."

    # --- IDLE ------------------------------------------------------------------------------

    async def cmd_idle(self, command: Command) -> str:
        event = events.subscribe(self.user_store.maildir)  # before "+": miss nothing
        folder = self.selected.index.path if self.selected is not None else None
        # Other processes' changes to the selected folder: inotify, else a quick poll.
        watched = folder is not None and watch.watch(folder, event)
        check = IDLE_CHECK if watched or folder is None else watch.POLL_SECONDS
        self.send("+ idling")
        await self.stream.drain()
        reader = asyncio.ensure_future(self.stream.readline(self.settings.imap_autologout))
        self.waiting = True  # NOTIFY may speak while the client idles
        try:
            while True:
                waiter = asyncio.ensure_future(event.wait())
                done, _ = await asyncio.wait(
                    {reader, waiter}, timeout=check, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                if reader in done:
                    line = reader.result()
                    if not line:
                        raise ConnectionError("client went away")
                    if line.strip().upper() != b"DONE":
                        raise Bad("Expected DONE to end IDLE.")
                    return "IDLE terminated."
                event.clear()
                if self.selected is not None:
                    self.selected.absorb(self.origin)
                    await self.sync(expunges=True)
                    await self.stream.drain()
        finally:
            self.waiting = False
            events.unsubscribe(self.user_store.maildir, event)
            if watched and folder is not None:
                watch.unwatch(folder, event)
            if not reader.done():
                reader.cancel()

    # --- QUOTA (RFC 9208) ------------------------------------------------------------------

    async def cmd_getquotaroot(self, command: Command) -> str:
        name = folders.normalize(command.args["mailbox"])
        if name not in self.user_store.names():
            raise No(f"Mailbox {name} does not exist.", "NONEXISTENT")
        limit = await self._quota_limit()
        shown = wire.astring(self.shown_name(name))
        self.send(b"* QUOTAROOT " + shown + (b' ""' if limit is not None else b""))
        if limit is not None:
            self._send_quota(limit)
        return "GETQUOTAROOT completed."

    async def cmd_getquota(self, command: Command) -> str:
        limit = await self._quota_limit()
        if command.args["root"] != "" or limit is None:
            raise No("No such quota root.", "NONEXISTENT")
        self._send_quota(limit)
        return "GETQUOTA completed."

    async def cmd_setquota(self, command: Command) -> str:
        raise No("Quotas are set by the domain's administrator in the control panel.", "NOPERM")

    async def _quota_limit(self) -> int | None:
        assert self.login is not None
        limit = await asyncio.to_thread(auth.current_quota, self.login.mailbox_id)
        self.user_store.quota_limit = limit
        return limit

    def _send_quota(self, limit: int) -> None:
        used, _count = self.user_store.usage()
        self.send(f'* QUOTA "" (STORAGE {(used + 1023) // 1024} {limit // 1024})')


USABLE_SPECIAL_USES = {"\\archive", "\\drafts", "\\junk", "\\sent", "\\trash"}


def _special_use(attributes: list[str]) -> str:
    """The special-use attributes a client may give a folder (RFC 6154): the real ones;
    \\All and \\Flagged are virtual folders Maildir cannot be, anything else is
    unknown: NO [USEATTR]."""
    for attribute in attributes:
        if attribute.lower() not in USABLE_SPECIAL_USES:
            raise No(f"Cannot mark a folder {attribute}.", "USEATTR")
    return " ".join(a[0] + a[1:].capitalize() for a in attributes)


def _literal(value: str) -> bytes:
    raw = value.encode("utf-8")
    return b"{%d}\r\n%s" % (len(raw), raw)
