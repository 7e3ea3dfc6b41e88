"""The IMAP state machine of one client: reads commands (with their literals) from a
`Stream`, checks the state they are allowed in, runs them against the user's
`UserStore`, and writes the responses. Decisions about logins live in
`courriel.access.auth`; the grammar in `parser`; message rendering in `fetch`.

Every failure ends as a tagged NO/BAD (or a BYE for what cannot be recovered); nothing
a client sends can stop the server.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import contextlib
import itertools
import logging
import operator
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import courriel
from courriel.access import auth
from courriel.access.auth import AccessSettings, AuthDenied, Login
from courriel.access.imap import fetch, mime, wire
from courriel.access.imap.parser import (
    STAR,
    TAG_RE,
    Command,
    FetchAtt,
    ParseError,
    SequenceSet,
    literal_at_end,
    parse,
)
from courriel.access.imap.search import Search
from courriel.access.listener import LineTooLong, Stream
from courriel.cluster.proxy import ProxyError, Upstream, imap_sign_in, pipe
from courriel.cluster.sessions import track
from courriel.inbound.learning import note_move
from courriel.mailstore import folders, watch
from courriel.mailstore.events import events
from courriel.mailstore.folders import FolderError
from courriel.mailstore.index import EXPUNGE, FLAG_CHANGE, FolderGone, FolderIndex, Message
from courriel.mailstore.keywords import TooManyKeywords
from courriel.mailstore.maildir import MaildirError
from courriel.mailstore.store import OverQuota, UserStore
from courriel.mailstore.uidlist import UidListLocked

log = logging.getLogger("courriel.access.imap")

MAX_COMMAND = 64 * 1024  # a command line without its APPEND literal
MAX_LITERAL_UNAUTHENTICATED = 8 * 1024
MAX_BAD_COMMANDS = 20
PRE_LOGIN_TIMEOUT = 120.0
IDLE_CHECK = 30.0  # seconds between directory checks while idling (inotify: a safety net)
BASE_CAPABILITIES = "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE"
AUTH_CAPABILITIES = (
    "NAMESPACE UIDPLUS MOVE CHILDREN SPECIAL-USE UNSELECT QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE"
    " CONDSTORE"
)
SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"
_counter = itertools.count(1)


class Bad(Exception):
    """A command that is well formed but not acceptable here: tagged BAD."""


class No(Exception):
    """A command that failed: tagged NO with an optional response code."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class Bye(Exception):
    pass


async def _hand_over(home: int, user: str, password: str) -> Upstream:
    try:
        return await imap_sign_in(home, user, password)
    except ProxyError as error:
        log.warning("IMAP login of %s not handed over: %s", user, error)
        if error.refused:
            raise No("Wrong login or password.", "AUTHENTICATIONFAILED") from None
        raise No("The mailbox's server is unavailable; try again later.", "UNAVAILABLE") from None


@dataclass
class Selected:
    name: str
    index: FolderIndex
    readonly: bool
    view: list[int]  # UIDs in sequence-number order, as this client knows them
    recent: set[int]
    modseq: int
    max_uid: int
    pending_expunges: set[int] = field(default_factory=set)


Handler = Callable[[Command], Awaitable[str]]


class ImapSession:
    def __init__(self, stream: Stream, settings: AccessSettings) -> None:
        self.stream = stream
        self.settings = settings
        self.state = "not authenticated"
        self.login: Login | None = None
        self.store: UserStore | None = None
        self.selected: Selected | None = None
        self.origin = next(_counter)
        self.bad_count = 0
        # RFC 7162: once a client used CONDSTORE, every FETCH response about changed
        # flags carries the UID and the MODSEQ of the message.
        self.condstore = False
        self.upstream: Upstream | None = None  # the session is proxied to this node

    # --- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        self.send(f"* OK [CAPABILITY {self.capabilities()}] Courriel IMAP ready.")
        try:
            while self.state != "logout":
                try:
                    data = await self.read_command()
                except TimeoutError:
                    self.send("* BYE Autologout: idle for too long.")
                    break
                except LineTooLong:
                    self.send("* BYE Command line too long.")
                    break
                if data is None:
                    continue
                await self.execute(data)
                if self.upstream is not None:
                    await pipe(self.stream, self.upstream)
                    break
                await self.stream.settle()
        except Bye as bye:
            self.send(f"* BYE {bye}")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.unselect()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.stream.drain()

    @property
    def timeout(self) -> float:
        return self.settings.imap_autologout if self.login else PRE_LOGIN_TIMEOUT

    async def read_command(self) -> bytes | None:
        """One whole command: its line and every literal in it (None: refused)."""
        buffer = bytearray()
        while True:
            line = await self.stream.readline(self.timeout)
            if not line:
                raise ConnectionError("client went away")
            if not buffer and not line.strip():
                return None
            body = line[:-2] if line.endswith(b"\r\n") else line[:-1]
            literal = literal_at_end(body)
            if literal is None:
                buffer += body
                if len(buffer) > MAX_COMMAND:
                    return self._refuse(buffer, "Command too long.")
                return bytes(buffer)
            size, nonsync = literal
            buffer += body + b"\r\n"
            limit = self._literal_limit(buffer)
            if size > limit or len(buffer) > MAX_COMMAND:
                if nonsync:
                    raise Bye(f"[TOOBIG] Literal too big (at most {limit} bytes here).")
                return self._refuse(buffer, f"[TOOBIG] Literal too big (at most {limit} bytes).")
            if not nonsync:
                self.send("+ Ready for literal data")
                await self.stream.drain()
            buffer += await self.stream.readexactly(size, self.timeout)

    def _literal_limit(self, buffer: bytes) -> int:
        if self.login is None:
            return MAX_LITERAL_UNAUTHENTICATED
        if re.match(rb"\S+ APPEND ", bytes(buffer[:200]), re.I):
            return self.settings.message_size_limit
        return MAX_COMMAND

    def _refuse(self, buffer: bytes, message: str) -> None:
        match = TAG_RE.match(buffer)
        self.send(f"{match.group().decode() if match else '*'} BAD {message}")
        self._count_bad()
        return None

    def _count_bad(self) -> None:
        self.bad_count += 1
        if self.bad_count >= MAX_BAD_COMMANDS:
            raise Bye("Too many invalid commands.")

    def send(self, line: str | bytes) -> None:
        self.stream.write((line.encode("utf-8") if isinstance(line, str) else line) + b"\r\n")

    async def execute(self, data: bytes) -> None:
        try:
            command = parse(data)
        except ParseError as error:
            self.send(f"{error.tag} BAD {error}")
            self._count_bad()
            return
        handler: Handler | None = getattr(self, "cmd_" + command.name.lower(), None)
        assert handler is not None
        tag = command.tag
        try:
            self._check_state(command.name)
            text = await handler(command)
            self.bad_count = 0
            await self.sync(
                expunges=command.uid or command.name not in {"FETCH", "STORE", "SEARCH"}
            )
            self.send(f"{tag} OK {text}")
        except Bad as error:
            self.send(f"{tag} BAD {error}")
            self._count_bad()
        except No as error:
            code = f"[{error.code}] " if error.code else ""
            self.send(f"{tag} NO {code}{error}")
        except FolderError as error:
            code = f"[{error.code}] " if error.code else ""
            self.send(f"{tag} NO {code}{error}")
        except OverQuota as error:
            self.send(f"{tag} NO [OVERQUOTA] {error}")
        except TooManyKeywords as error:
            self.send(f"{tag} NO [LIMIT] Too many keywords: {error}.")
        except FolderGone:
            self.unselect()
            raise Bye("The selected mailbox was deleted by another client.") from None
        except (MaildirError, UidListLocked, PermissionError) as error:
            log.warning("storage error for %s: %s", self.login and self.login.login, error)
            self.send(f"{tag} NO [UNAVAILABLE] The mail storage is unavailable; try again later.")
        except _Silent:
            return
        except (Bye, ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("IMAP %s failed", command.name)
            self.send(f"{tag} NO [SERVERBUG] Internal error; the command was not completed.")

    _ANY = {"CAPABILITY", "NOOP", "LOGOUT", "ID"}
    _NOT_AUTH = {"STARTTLS", "LOGIN", "AUTHENTICATE"}
    _SELECTED = {
        "CHECK",
        "CLOSE",
        "UNSELECT",
        "EXPUNGE",
        "SEARCH",
        "FETCH",
        "STORE",
        "COPY",
        "MOVE",
    }

    def _check_state(self, name: str) -> None:
        if name in self._ANY:
            return
        if name in self._NOT_AUTH:
            if self.login is not None:
                raise Bad("Already logged in.")
            return
        if self.login is None:
            raise Bad("Log in first.")
        if name in self._SELECTED and self.selected is None:
            raise Bad("Select a mailbox first.")

    def capabilities(self) -> str:
        caps = BASE_CAPABILITIES
        if self.login is not None:
            return f"{caps} {AUTH_CAPABILITIES}"
        if not self.stream.tls and self.stream.tls_context is not None:
            caps += " STARTTLS"
        if auth.plaintext_allowed(self.settings, self.stream.tls, self.stream.ip):
            caps += " AUTH=PLAIN AUTH=LOGIN"
        else:
            caps += " LOGINDISABLED"
        return caps

    # --- any state -------------------------------------------------------------------------

    async def cmd_capability(self, command: Command) -> str:
        self.send(f"* CAPABILITY {self.capabilities()}")
        return "Capability completed."

    async def cmd_noop(self, command: Command) -> str:
        return "NOOP completed."

    async def cmd_logout(self, command: Command) -> str:
        self.send("* BYE Logging out.")
        self.state = "logout"
        self.unselect()
        return "Logout completed."

    async def cmd_id(self, command: Command) -> str:
        self.send(f'* ID ("name" "Courriel" "version" "{courriel.__version__}")')
        return "ID completed."

    # --- not authenticated -----------------------------------------------------------------

    async def cmd_starttls(self, command: Command) -> str:
        if self.stream.tls or self.stream.tls_context is None:
            raise Bad(
                "TLS is already active." if self.stream.tls else "STARTTLS is not offered here."
            )
        self.send(f"{command.tag} OK Begin TLS negotiation now.")
        await self.stream.start_tls()
        raise _Silent()

    async def cmd_login(self, command: Command) -> str:
        await self._sign_in(command.args["user"], command.args["password"])
        return f"[CAPABILITY {self.capabilities()}] Logged in."

    async def cmd_authenticate(self, command: Command) -> str:
        mechanism = command.args["mechanism"]
        if mechanism not in {"PLAIN", "LOGIN"}:
            raise No(f"Unsupported mechanism {mechanism}; use PLAIN or LOGIN.", "CANNOT")
        self._require_privacy()
        initial = command.args["initial"]
        if mechanism == "PLAIN":
            response = initial if initial is not None else await self._challenge("")
            parts = self._b64(response).split(b"\0")
            if len(parts) != 3:
                raise Bad("Malformed PLAIN response.")
            authzid, user, password = (p.decode("utf-8", "replace") for p in parts)
            if authzid and authzid != user:
                raise No("Logging in as another user is not allowed.", "AUTHORIZATIONFAILED")
        else:
            user_raw = initial if initial is not None else await self._challenge("VXNlcm5hbWU6")
            user = self._b64(user_raw).decode("utf-8", "replace")
            password = self._b64(await self._challenge("UGFzc3dvcmQ6")).decode("utf-8", "replace")
        await self._sign_in(user, password)
        return f"[CAPABILITY {self.capabilities()}] Logged in."

    async def _challenge(self, text: str) -> bytes:
        self.send(f"+ {text}")
        await self.stream.drain()
        line = (await self.stream.readline(self.timeout)).strip()
        if line == b"*":
            raise Bad("Authentication cancelled.")
        if len(line) > MAX_LITERAL_UNAUTHENTICATED:
            raise Bad("Authentication response too long.")
        return line

    @staticmethod
    def _b64(data: bytes) -> bytes:
        if data == b"=":
            return b""
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise Bad("Invalid base64 in authentication response.") from None

    def _require_privacy(self) -> None:
        if not auth.plaintext_allowed(self.settings, self.stream.tls, self.stream.ip):
            raise No(
                "Passwords are only accepted over TLS: use STARTTLS or port 993.", "PRIVACYREQUIRED"
            )

    async def _sign_in(self, user: str, password: str) -> None:
        self._require_privacy()
        try:
            login = await auth.authenticate(user, password, self.stream.ip, self.settings)
        except AuthDenied as denied:
            code = {
                "disabled": "CONTACTADMIN",
                "throttled": "UNAVAILABLE",
                "unavailable": "UNAVAILABLE",
            }.get(denied.reason, "AUTHENTICATIONFAILED")
            raise No(denied.message, code) from None
        if login.home is not None:  # held by another hosting server: handed to it
            self.upstream = await _hand_over(login.home, user, password)
            self.login = login
            self.state = "authenticated"
            return
        self.login = login
        self.store = UserStore(login.maildir, login.quota)
        self.state = "authenticated"
        track(login.mailbox_id, self.stream)

    # --- authenticated ---------------------------------------------------------------------

    @property
    def user_store(self) -> UserStore:
        assert self.store is not None
        return self.store

    async def cmd_select(self, command: Command, readonly: bool = False) -> str:
        self.unselect()
        name = folders.normalize(command.args["mailbox"])
        if command.args.get("condstore"):
            self.condstore = True
        index = self.user_store.open(name)
        recent = set(index.in_new) if readonly else set(index.claim_new())
        view = list(index.uids)
        self.selected = Selected(
            name, index, readonly, view, recent, index.modseq, view[-1] if view else 0
        )
        keywords = " ".join(n for n in index.keywords.names if n)
        flags = f"{SYSTEM_FLAGS} {keywords}".strip()
        self.send(f"* FLAGS ({flags})")
        permanent = "" if readonly else f"{flags} \\*"
        self.send(f"* OK [PERMANENTFLAGS ({permanent})] Flags permitted.")
        self.send(f"* {len(view)} EXISTS")
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
        mode = "READ-ONLY" if readonly else "READ-WRITE"
        return f"[{mode}] {'EXAMINE' if readonly else 'SELECT'} completed."

    async def cmd_examine(self, command: Command) -> str:
        return await self.cmd_select(command, readonly=True)

    def unselect(self) -> None:
        if self.selected is not None and self.store is not None:
            self.store.close(self.selected.index)
        self.selected = None
        if self.login is not None and self.state != "logout":
            self.state = "authenticated"

    async def cmd_create(self, command: Command) -> str:
        name = command.args["mailbox"].rstrip(folders.SEPARATOR)
        self.user_store.create(name)
        return "CREATE completed."

    async def cmd_delete(self, command: Command) -> str:
        name = folders.normalize(command.args["mailbox"])
        if self.selected is not None and self.selected.name == name:
            self.unselect()
        self.user_store.delete(name)
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
        if not lsub and args["patterns"] == [""]:
            self.send('* LIST (\\Noselect) "/" ""')
            return "LIST completed."
        existing = self.user_store.names()
        subscribed = set(self.user_store.subscriptions())
        only_subscribed = lsub or "SUBSCRIBED" in args["select"]
        only_special = "SPECIAL-USE" in args["select"]
        show_subscribed = "SUBSCRIBED" in args["return"] or "SUBSCRIBED" in args["select"]
        candidates = set(subscribed if only_subscribed else existing)
        for name in list(candidates):  # parents that exist only as a path
            parts = name.split("/")
            for depth in range(1, len(parts)):
                candidates.add("/".join(parts[:depth]))
        existing_set = set(existing)
        matchers = [_pattern(args["reference"], p) for p in args["patterns"]]
        for name in sorted(candidates, key=lambda n: (n != "INBOX", n)):
            if not any(m.fullmatch(name) for m in matchers):
                continue
            attributes = []
            listed = name in (subscribed if only_subscribed else existing_set)
            if not listed:
                if only_subscribed and not any(m.pattern.endswith("[^/]*") for m in matchers):
                    continue
                attributes.append("\\Noselect" if lsub else "\\NonExistent")
            elif name not in existing_set:
                attributes.append("\\NonExistent" if not lsub else "\\Noselect")
            if not lsub:
                has_children = any(other.startswith(name + "/") for other in existing_set)
                attributes.append("\\HasChildren" if has_children else "\\HasNoChildren")
                use = folders.special_use(name)
                if use:
                    attributes.append(use)
                elif only_special:
                    continue
                if show_subscribed and name in subscribed:
                    attributes.append("\\Subscribed")
            self.send(f'* {verb} ({" ".join(attributes)}) "/" '.encode() + wire.astring(name))
        return f"{verb} completed."

    async def cmd_lsub(self, command: Command) -> str:
        return await self.cmd_list(command, lsub=True)

    async def cmd_namespace(self, command: Command) -> str:
        self.send('* NAMESPACE (("" "/")) NIL NIL')
        return "NAMESPACE completed."

    async def cmd_enable(self, command: Command) -> str:
        enabled = ""
        if "CONDSTORE" in command.args["capabilities"]:
            self.condstore = True
            enabled = " CONDSTORE"
        self.send(f"* ENABLED{enabled}")
        return "ENABLE completed."

    async def cmd_status(self, command: Command) -> str:
        name = folders.normalize(command.args["mailbox"])
        index = self.user_store.open(name)
        try:
            values = []
            for item in command.args["items"]:
                if item == "MESSAGES":
                    value = len(index)
                elif item == "RECENT":
                    value = len(index.in_new)
                elif item == "UIDNEXT":
                    value = index.uidnext
                elif item == "UIDVALIDITY":
                    value = index.uidvalidity
                elif item == "UNSEEN":
                    value = sum(1 for m in index.by_uid.values() if "S" not in m.info)
                elif item == "HIGHESTMODSEQ":
                    self.condstore = True
                    value = index.modseq
                else:
                    value = sum(index.size(m) for m in index.by_uid.values())
                values.append(f"{item} {value}")
        finally:
            self.user_store.close(index)
        self.send(b"* STATUS " + wire.astring(name) + f" ({' '.join(values)})".encode())
        return "STATUS completed."

    async def cmd_append(self, command: Command) -> str:
        args = command.args
        name = folders.normalize(args["mailbox"])
        try:
            index = self.user_store.open(name)
        except FolderError:
            raise No(f"Mailbox {name} does not exist: create it first.", "TRYCREATE") from None
        try:
            letters = index.letters(args["flags"], create=True)
            uid = self.user_store.append(index, name, args["message"], letters, args["date"])
            validity = index.uidvalidity
        finally:
            self.user_store.close(index)
        events.notify(self.user_store.maildir)
        return f"[APPENDUID {validity} {uid}] APPEND completed."

    async def cmd_idle(self, command: Command) -> str:
        event = events.subscribe(self.user_store.maildir)  # before "+": miss nothing
        folder = self.selected.index.path if self.selected is not None else None
        # Other processes' changes to the selected folder: inotify, else a quick poll.
        watched = folder is not None and watch.watch(folder, event)
        check = IDLE_CHECK if watched or folder is None else watch.POLL_SECONDS
        self.send("+ idling")
        await self.stream.drain()
        reader = asyncio.ensure_future(self.stream.readline(self.settings.imap_autologout))
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
                    await self.sync(expunges=True)
                    await self.stream.drain()
        finally:
            events.unsubscribe(self.user_store.maildir, event)
            if watched and folder is not None:
                watch.unwatch(folder, event)
            if not reader.done():
                reader.cancel()

    async def cmd_getquotaroot(self, command: Command) -> str:
        name = folders.normalize(command.args["mailbox"])
        if name not in self.user_store.names():
            raise No(f"Mailbox {name} does not exist.", "NONEXISTENT")
        limit = await self._quota_limit()
        self.send(b"* QUOTAROOT " + wire.astring(name) + (b' ""' if limit is not None else b""))
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

    # --- selected --------------------------------------------------------------------------

    @property
    def sel(self) -> Selected:
        assert self.selected is not None
        return self.selected

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

    def resolve(self, ranges: SequenceSet, uid: bool) -> Sequence[int]:
        """Positions in the session's view (0-based, in order) of the messages a set
        designates: a `range` for the usual single range, so that `1:*` on a big folder
        builds no list (nor objects for the garbage collector to walk)."""
        view = self.sel.view
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

    async def cmd_fetch(self, command: Command) -> str:
        selected = self.sel
        index = selected.index
        items: list[FetchAtt] = list(command.args["items"])
        if command.uid and not any(i.name == "UID" for i in items):
            items.insert(0, FetchAtt("UID"))
        positions = self.resolve(command.args["set"], command.uid)
        since = command.args.get("changedsince")
        if since is not None or any(i.name == "MODSEQ" for i in items):
            self.condstore = True
        if since is not None:  # RFC 7162: only what changed after, with its MODSEQ
            if not any(i.name == "MODSEQ" for i in items):
                items.append(FetchAtt("MODSEQ"))
            view, get = selected.view, index.by_uid.get
            positions = [p for p in positions if (m := get(view[p])) is None or m.modseq > since]
        if {i.name for i in items} <= {"UID", "FLAGS", "MODSEQ"}:  # what synchronisers ask
            missing = await self._fetch_flags(positions, [i.name for i in items])
        else:
            missing = 0
            view, by_uid = selected.view, index.by_uid
            sets_seen = not selected.readonly and any(i.sets_seen for i in items)
            wants_data = any(fetch.needs_data(i) for i in items)
            for position in positions:
                message = by_uid.get(view[position])
                data = None
                if message is not None and wants_data:
                    data = index.read(message)
                if message is None or (data is None and wants_data):
                    missing += 1
                    continue
                self.stream.write(self._render(position + 1, message, items, data, sets_seen))
                await self.stream.pace()
        if missing:
            raise No("Some of the requested messages no longer exist.", "EXPUNGEISSUED")
        return "FETCH completed."

    async def _fetch_flags(self, positions: Sequence[int], order: list[str]) -> int:
        """FETCH of UID and FLAGS only, 4,096 messages at a time, the flag lists
        formatted once per combination of flags. In the usual case (`UID FLAGS`, no
        \\Recent among them) each batch is one `%` over a repeated line, so that the
        interpreter does no per-message formatting. Returns how many messages no longer
        exist."""
        selected = self.sel
        view, get = selected.view, selected.index.by_uid.get
        flags = _FlagCache(self, selected.recent)
        by_info = None
        if order == ["UID", "FLAGS"] and selected.recent.isdisjoint(
            map(view.__getitem__, positions)
        ):
            by_info = _InfoFlags(selected.index)
        missing = 0
        for start in range(0, len(positions), 4096):
            part = positions[start : start + 4096]
            if isinstance(part, range):
                uids = view[part.start : part.stop]
                numbers: Iterable[int] = range(part.start + 1, part.stop + 1)
            else:
                uids = [view[p] for p in part]
                numbers = [p + 1 for p in part]
            messages = list(map(get, uids))
            present = list(filter(None, messages))
            if len(present) != len(messages):  # expunged by another session meanwhile
                missing += len(messages) - len(present)
                numbers = [n for n, m in zip(numbers, messages, strict=True) if m is not None]
                messages = present
            if by_info is not None:
                values = zip(
                    numbers,
                    map(_UID, messages),
                    map(by_info.__getitem__, map(_INFO, messages)),
                    strict=True,
                )
                self.stream.write(
                    _FLAGS_LINE * len(messages) % tuple(itertools.chain.from_iterable(values))
                )
            else:
                self.stream.write(
                    b"".join(
                        b"* %d FETCH (%s)\r\n" % (n, b" ".join(flags.item(m, i) for i in order))
                        for n, m in zip(numbers, messages, strict=True)
                    )
                )
            await self.stream.pace()
        return missing

    def _render(
        self,
        position: int,
        message: Message,
        items: list[FetchAtt],
        data: bytes | None,
        sets_seen: bool,
    ) -> bytes:
        index = self.sel.index
        flags_changed = False
        if sets_seen and "S" not in message.info:
            flags_changed = index.set_info(
                message, "".join(sorted(message.info + "S")), self.origin
            )
        root = None
        if data is not None and any(fetch.needs_structure(i) for i in items):
            root = mime.parse(data)
        parts: list[bytes] = []
        for item in items:
            name = item.name
            if name == "UID":
                parts.append(b"UID %d" % message.uid)
            elif name == "FLAGS":
                parts.append(fetch.flags_item(self._flags(message)))
            elif name == "INTERNALDATE":
                parts.append(b"INTERNALDATE " + wire.internaldate(index.internaldate(message)))
            elif name == "RFC822.SIZE":
                size = len(data) if data is not None else index.size(message)
                parts.append(b"RFC822.SIZE %d" % size)
            elif name == "ENVELOPE":
                assert root is not None
                parts.append(b"ENVELOPE " + fetch.envelope(root))
            elif name in ("BODY", "BODYSTRUCTURE"):
                assert root is not None and data is not None
                parts.append(
                    name.encode() + b" " + fetch.body_structure(data, root, name == "BODYSTRUCTURE")
                )
            elif name == "MODSEQ":
                parts.append(b"MODSEQ (%d)" % message.modseq)
            else:
                assert data is not None
                parts.append(fetch.body_item(data, root, item))
        if flags_changed and not any(i.name == "FLAGS" for i in items):
            parts.append(fetch.flags_item(self._flags(message)))
        if flags_changed and self.condstore and not any(i.name == "MODSEQ" for i in items):
            parts.append(b"MODSEQ (%d)" % message.modseq)
        return b"* %d FETCH (%s)\r\n" % (position, b" ".join(parts))

    def _modseq_item(self, message: Message) -> bytes:
        """`MODSEQ (n) ` in FETCH responses about changed flags, once CONDSTORE is on."""
        return b"MODSEQ (%d) " % message.modseq if self.condstore else b""

    def _flags(self, message: Message) -> list[str]:
        flags = self.sel.index.flags(message)
        if message.uid in self.sel.recent:
            flags.append("\\Recent")
        return flags

    async def cmd_store(self, command: Command) -> str:
        selected = self.sel
        if selected.readonly:
            raise No("The mailbox is open read-only (EXAMINE).", "READ-ONLY")
        args = command.args
        index = selected.index
        wanted = [f for f in args["flags"] if f.lower() != "\\recent"]
        if any(f.startswith("\\") and f.lower() not in _SYSTEM_LOWER for f in wanted):
            raise Bad("Unknown system flag.")
        letters = set(index.letters(wanted, create=args["mode"] != "-"))
        since = args["unchangedsince"]
        if since is not None:
            self.condstore = True
        missing = 0
        modified: list[int] = []  # RFC 7162: changed by someone after UNCHANGEDSINCE
        out = []
        with index.changes():  # one write of the new mod-sequences for the command
            for position, uid in self.targets(args["set"], command.uid):
                message = index.by_uid.get(uid)
                if message is None:
                    missing += 1
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
                before = message.modseq
                if not index.set_info(message, "".join(sorted(new)), self.origin):
                    missing += 1
                    continue
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
        if missing:
            raise No("Some of the messages no longer exist.", "EXPUNGEISSUED")
        if modified:
            return f"[MODIFIED {_uid_set(modified)}] Conditional STORE failed for some messages."
        return "STORE completed."

    async def cmd_search(self, command: Command) -> str:
        charset = command.args["charset"]
        if charset not in {"UTF-8", "US-ASCII"}:
            raise No(f"Unsupported charset {charset}.", "BADCHARSET (UTF-8 US-ASCII)")
        selected = self.sel
        search = Search(selected.index, selected.view, selected.recent)
        found = search.run(command.args["keys"])
        numbers = [uid if command.uid else position for position, uid in found]
        highest = ""
        if search.uses_modseq:  # RFC 7162: the highest MODSEQ of what was found
            self.condstore = True
            by_uid = selected.index.by_uid
            top = max((by_uid[uid].modseq for _, uid in found if uid in by_uid), default=0)
            highest = f" (MODSEQ {top})" if top else ""
        self.send("* SEARCH" + "".join(f" {n}" for n in numbers) + highest)
        return "SEARCH completed."

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
            targets = list(self.targets(command.args["set"], command.uid))
            by_uid = selected.index.by_uid
            messages = [by_uid[uid] for _, uid in targets if uid in by_uid]
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
            if targets and len(messages) < len(targets):
                raise No("The messages no longer exist.", "EXPUNGEISSUED")
            return f"{verb} completed (nothing to do)."
        code = (
            f"COPYUID {validity} {_uid_set([s for s, _ in pairs])} "
            f"{_uid_set([d for _, d in pairs])}"
        )
        if move:
            self.send(f"* OK [{code}] Moved.")
            return f"{verb} completed."
        return f"[{code}] {verb} completed."

    async def cmd_move(self, command: Command) -> str:
        return await self.cmd_copy(command, move=True)

    # --- telling the client what changed ---------------------------------------------------

    async def sync(self, expunges: bool) -> None:
        """Untagged EXPUNGE / EXISTS / RECENT / FETCH FLAGS for changes since the client
        last heard (by others, by delivery, or expunges by this very session)."""
        selected = self.selected
        if selected is None:
            return
        index = selected.index
        index.refresh()
        entries = index.changes_since(selected.modseq)
        changed: set[int] = set()
        if entries is None:  # too far behind the log: compare everything
            selected.pending_expunges.update(u for u in selected.view if u not in index.by_uid)
            changed = set(selected.view)
        else:
            for _modseq, uid, kind, origin in entries:
                if kind == EXPUNGE:
                    selected.pending_expunges.add(uid)
                elif kind == FLAG_CHANGE and origin != self.origin:
                    changed.add(uid)
        selected.modseq = index.modseq
        view = selected.view
        out: list[bytes] = []
        if expunges and selected.pending_expunges:
            for uid in sorted(selected.pending_expunges):
                position = bisect.bisect_left(view, uid)
                if position < len(view) and view[position] == uid:
                    del view[position]
                    out.append(b"* %d EXPUNGE\r\n" % (position + 1))
                selected.recent.discard(uid)
            selected.pending_expunges.clear()
        start = bisect.bisect_right(index.uids, selected.max_uid)
        new = index.uids[start:]
        if new:
            view.extend(new)
            selected.max_uid = new[-1]
            if not selected.readonly:
                selected.recent.update(index.claim_new())
            out.append(b"* %d EXISTS\r\n* %d RECENT\r\n" % (len(view), len(selected.recent)))
        for uid in sorted(changed):
            position = bisect.bisect_left(view, uid)
            message = index.by_uid.get(uid)
            if (
                position < len(view)
                and view[position] == uid
                and message is not None
                and uid not in selected.pending_expunges
            ):
                out.append(
                    b"* %d FETCH (UID %d %s%s)\r\n"
                    % (
                        position + 1,
                        uid,
                        self._modseq_item(message),
                        fetch.flags_item(self._flags(message)),
                    )
                )
        if out:
            self.stream.write(b"".join(out))


class _FlagCache(dict[tuple[str, bool], bytes]):
    """`FLAGS (...)` bytes per flag combination: thousands of messages share a few."""

    def __init__(self, session: ImapSession, recent: set[int]) -> None:
        super().__init__()
        self.session = session
        self.recent = recent

    def item(self, message: Message, name: str) -> bytes:
        if name == "UID":
            return b"UID %d" % message.uid
        if name == "MODSEQ":
            return b"MODSEQ (%d)" % message.modseq
        return self[message]

    def __getitem__(self, message: Message) -> bytes:  # type: ignore[override]
        key = (message.info, message.uid in self.recent)
        try:
            return super().__getitem__(key)
        except KeyError:
            value = fetch.flags_item(self.session._flags(message))
            self[key] = value
            return value


_FLAGS_LINE = b"* %d FETCH (UID %d %s)\r\n"
_UID = operator.attrgetter("uid")
_INFO = operator.attrgetter("info")


class _InfoFlags(dict[str, bytes]):
    """`FLAGS (...)` bytes per flag letters of a file name (no \\Recent)."""

    def __init__(self, index: FolderIndex) -> None:
        super().__init__()
        self.index = index

    def __missing__(self, info: str) -> bytes:
        value = self[info] = fetch.flags_item(self.index.flag_names(info))
        return value


class _Silent(Exception):
    """The command already answered (STARTTLS answers before switching)."""


_SYSTEM_LOWER = {"\\answered", "\\flagged", "\\deleted", "\\seen", "\\draft"}


def _uid_set(uids: list[int]) -> str:
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


def _pattern(reference: str, pattern: str) -> re.Pattern[str]:
    """LIST wildcards: * matches anything, % anything but the separator."""
    full = reference + pattern if not pattern.startswith("/") else pattern
    regex = ""
    if full[:5].upper() == "INBOX":
        regex, full = "(?i:INBOX)", full[5:]
    for char in full:
        if char == "*":
            regex += ".*"
        elif char == "%":
            regex += "[^/]*"
        else:
            regex += re.escape(char)
    return re.compile(regex, re.S)


async def handle(stream: Stream, settings: AccessSettings) -> None:
    session = ImapSession(stream, settings)
    await session.run()
