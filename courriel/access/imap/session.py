"""The IMAP state machine of one client: reads commands (with their literals) from a
`Stream`, checks the state they are allowed in, runs them against the user's
`UserStore`, and writes the responses. Decisions about logins live in
`courriel.access.auth`; the grammar in `parser`; the commands on mailboxes in
`mailboxes`, those on messages in `messages`; what a client knows of its selected
mailbox in `view`.

Every failure ends as a tagged NO/BAD (or a BYE for what cannot be recovered), logged
with its reason; nothing a client sends can stop the server.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import logging

import courriel
from courriel.access import auth
from courriel.access.auth import AccessSettings, AuthDenied, Login
from courriel.access.imap import notify, rev2
from courriel.access.imap.errors import Bad, Bye, No, Silent
from courriel.access.imap.mailboxes import MailboxCommands
from courriel.access.imap.messages import MessageCommands
from courriel.access.imap.parser import Command, ParseError, parse
from courriel.access.imap.reader import CommandReader, RawCommand, Refused
from courriel.access.imap.searching import SearchCommands
from courriel.access.imap.view import Selected
from courriel.access.listener import LineTooLong, Stream
from courriel.cluster.proxy import ProxyError, Upstream, imap_sign_in, pipe
from courriel.cluster.sessions import track
from courriel.mailstore import folders
from courriel.mailstore.folders import FolderError
from courriel.mailstore.index import FolderGone, give_back_memory
from courriel.mailstore.keywords import TooManyKeywords
from courriel.mailstore.maildir import MaildirError
from courriel.mailstore.store import OverQuota, UserStore
from courriel.mailstore.uidlist import UidListLocked

log = logging.getLogger("courriel.access.imap")

MAX_BAD_COMMANDS = 20
MAX_AUTH_RESPONSE = 8 * 1024
PRE_LOGIN_TIMEOUT = 120.0
# IMAP4rev2 (RFC 9051) beside IMAP4rev1: a client gets it after ENABLE IMAP4rev2 (`rev2`).
BASE_CAPABILITIES = "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE"
# After login, as Dovecot 2.3 offers them (see docs/mail/imap-pop3.md, "What clients get"); LITERAL+
# covers LITERAL- (RFC 7888 5: a server offers one of them).
AUTH_CAPABILITIES = " ".join(
    [
        "NAMESPACE UIDPLUS MOVE CHILDREN UNSELECT",
        "LIST-EXTENDED LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE",  # RFC 5258, 5819, 6154
        "ESEARCH SEARCHRES SORT ESORT CONTEXT=SEARCH WITHIN",  # 4731, 5182, 5256, 5267, 5032
        "THREAD=REFERENCES THREAD=ORDEREDSUBJECT",  # RFC 5256
        "MULTIAPPEND CATENATE BINARY",  # RFC 3502, 4469, 3516
        "STATUS=SIZE SAVEDATE I18NLEVEL=1",  # RFC 8438, 8514, 5255
        "CONDSTORE QRESYNC",  # RFC 7162
        "QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE",  # RFC 9208
        "COMPRESS=DEFLATE METADATA UTF8=ACCEPT",  # RFC 4978, 5464, 6855
        "NOTIFY",  # RFC 5465
    ]
)
_counter = itertools.count(1)
# RFC 3501 7.4.1: no EXPUNGE during these (sequence numbers must not move under them)
_NO_EXPUNGES = {"FETCH", "STORE", "SEARCH", "SORT", "THREAD"}
_BIG = {"FETCH", "SEARCH", "SORT", "THREAD"}


async def _hand_over(home: int, user: str, password: str) -> Upstream:
    try:
        return await imap_sign_in(home, user, password)
    except ProxyError as error:
        log.warning("IMAP login of %s not handed over: %s", user, error)
        if error.refused:
            raise No("Wrong login or password.", "AUTHENTICATIONFAILED") from None
        raise No("The mailbox's server is unavailable; try again later.", "UNAVAILABLE") from None


class ImapSession(MailboxCommands, MessageCommands, SearchCommands):
    def __init__(self, stream: Stream, settings: AccessSettings) -> None:
        self.stream = stream
        self.reader = CommandReader(stream)
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
        self.qresync = False  # RFC 7162: ENABLE QRESYNC (VANISHED instead of EXPUNGE)
        self.utf8 = False  # RFC 6855: ENABLE UTF8=ACCEPT (mailbox names in UTF-8)
        self.rev2 = False  # RFC 9051: ENABLE IMAP4rev2 (see `rev2` for what changes)
        self.notifier: notify.Notifier | None = None  # RFC 5465: NOTIFY SET in force
        # Between commands (or in IDLE): NOTIFY may write untagged responses now.
        self.waiting = False

    # --- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        self.send(f"* OK [CAPABILITY {self.capabilities()}] Courriel IMAP ready.")
        try:
            while self.state != "logout":
                try:
                    self.waiting = True
                    data = await self.read_command()
                except TimeoutError:
                    self.send("* BYE Autologout: idle for too long.")
                    break
                except LineTooLong:
                    self._log_refusal("*", "BYE", "command line too long")
                    self.send("* BYE Command line too long.")
                    break
                finally:
                    self.waiting = False
                if data is None:
                    continue
                await self.execute(data)
                if self.upstream is not None:
                    await pipe(self.stream, self.upstream)
                    break
                await self.stream.settle()
        except Bye as bye:
            self._log_refusal("*", "BYE", str(bye))
            self.send(f"* BYE {bye}")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.stop_notifying()
            self.unselect()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.stream.drain()

    @property
    def timeout(self) -> float:
        return self.settings.imap_autologout if self.login else PRE_LOGIN_TIMEOUT

    async def read_command(self) -> RawCommand | None:
        """One whole command with its literals (None: an empty line, or a command
        refused while it was read)."""
        try:
            return await self.reader.read(
                self.timeout,
                self.login.maildir if self.login else None,
                self.append_limit,
                self.check_append,
            )
        except Refused as refused:
            self._log_refusal(refused.tag, refused.status, str(refused), refused.command)
            self.send(f"{refused.tag} {refused.status} {refused}")
            if refused.status == "BAD":
                self._count_bad()
            return None

    @property
    def append_limit(self) -> int:
        return self.settings.append_limit or self.settings.message_size_limit

    def _count_bad(self) -> None:
        self.bad_count += 1
        if self.bad_count >= MAX_BAD_COMMANDS:
            raise Bye("Too many invalid commands.")

    def _log_refusal(self, tag: str, status: str, reason: str, command: bytes | str = "") -> None:
        """Every refused command goes to the log with its reason (who, what, why)."""
        if isinstance(command, bytes):
            command = command.decode("ascii", "replace")
        log.info(
            "IMAP %s %s %s from %s: %s %s",
            self.login.login if self.login else "(not logged in)",
            tag,
            command[:40] or "-",
            self.stream.ip,
            status,
            reason,
        )

    def send(self, line: str | bytes) -> None:
        self.stream.write((line.encode("utf-8") if isinstance(line, str) else line) + b"\r\n")

    async def execute(self, raw: RawCommand) -> None:
        try:
            await self._execute(raw)
        finally:
            raw.discard()  # spooled messages not stored (refused, failed)

    async def _execute(self, raw: RawCommand) -> None:
        data = raw.data
        try:
            command = parse(data, raw.spools)
        except ParseError as error:
            self._log_refusal(error.tag, "BAD", str(error), data[len(error.tag) + 1 :][:20])
            self.send(f"{error.tag} BAD {error}")
            self._count_bad()
            return
        tag, name = command.tag, ("UID " if command.uid else "") + command.name
        try:
            self._check_state(command.name)
            if raw.refusal is not None:
                raise raw.refusal
            if self.selected is not None:
                self.selected.absorb(self.origin)
            condstore = self.condstore
            text = await self.dispatch(command)
            if self.condstore and not condstore and self.selected is not None:
                # RFC 7162 3.1: enabling CONDSTORE with a mailbox selected
                self.send(f"* OK [HIGHESTMODSEQ {self.selected.index.modseq}] Highest.")
            self.bad_count = 0
            expunged = await self.sync(expunges=command.uid or command.name not in _NO_EXPUNGES)
            if command.name in _BIG and self.selected and len(self.selected.view) > 10_000:
                give_back_memory()  # a command over a big folder leaves freed heap behind
            if self.notifier is not None:  # other mailboxes' news, before the tagged OK
                self.notifier.after_command()
                self.notifier.report()
            if expunged and self.condstore and not text.startswith("[") and self.selected:
                # RFC 7162 3.1.11: after expunges, the new HIGHESTMODSEQ (as Dovecot)
                text = f"[HIGHESTMODSEQ {self.selected.index.modseq}] {text}"
            self.send(f"{tag} OK {text}")
        except Bad as error:
            self._log_refusal(tag, "BAD", str(error), name)
            self.send(f"{tag} BAD {error}")
            self._count_bad()
        except (No, FolderError) as error:
            code = f"[{error.code}] " if error.code else ""
            self._log_refusal(tag, "NO", f"{code}{error}", name)
            if getattr(error, "sync", False):
                await self.sync(expunges=True)
            self.send(f"{tag} NO {code}{error}")
        except OverQuota as error:
            self._log_refusal(tag, "NO", f"[OVERQUOTA] {error}", name)
            self.send(f"{tag} NO [OVERQUOTA] {error}")
        except TooManyKeywords as error:
            self._log_refusal(tag, "NO", f"[LIMIT] {error}", name)
            self.send(f"{tag} NO [LIMIT] Too many keywords: {error}.")
        except FolderGone:
            self.unselect()
            raise Bye("The selected mailbox was deleted by another client.") from None
        except (MaildirError, UidListLocked, PermissionError) as error:
            log.warning("storage error for %s: %s", self.login and self.login.login, error)
            self.send(f"{tag} NO [UNAVAILABLE] The mail storage is unavailable; try again later.")
        except Silent:
            return
        except (Bye, ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("IMAP %s failed", command.name)
            self.send(f"{tag} NO [SERVERBUG] Internal error; the command was not completed.")

    async def dispatch(self, command: Command) -> str:
        handler = getattr(self, "cmd_" + command.name.lower(), None)
        assert handler is not None, command.name
        rev2.refuse(command, self.rev2)
        if self.utf8_names:
            self._names_from_utf8(command.args)
        return await handler(command)

    @property
    def utf8_names(self) -> bool:
        """Mailbox names in UTF-8 on the wire: after UTF8=ACCEPT (RFC 6855) or
        IMAP4rev2 (RFC 9051 5.1); modified UTF-7 otherwise."""
        return self.utf8 or self.rev2

    def _names_from_utf8(self, args: dict[str, object]) -> None:
        """UTF8=ACCEPT (RFC 6855): the client names mailboxes in UTF-8; they are kept in
        modified UTF-7 on disk, as Dovecot keeps them."""
        for key in ("mailbox", "old", "new", "reference"):
            value = args.get(key)
            if isinstance(value, str):
                args[key] = _to_mutf7(value)
        patterns = args.get("patterns")
        if isinstance(patterns, list):
            args["patterns"] = [_to_mutf7(p) for p in patterns]

    def shown_name(self, name: str) -> str:
        """A mailbox name as this client reads it: UTF-8 once UTF8=ACCEPT or IMAP4rev2
        is enabled."""
        if not self.utf8_names:
            return name
        try:
            return folders.decode_mutf7(name)
        except ValueError:
            return name

    _ANY = {"CAPABILITY", "NOOP", "LOGOUT", "ID"}
    _NOT_AUTH = {"STARTTLS", "LOGIN", "AUTHENTICATE"}
    _SELECTED = {
        "CHECK",
        "CLOSE",
        "UNSELECT",
        "EXPUNGE",
        "SEARCH",
        "SORT",
        "THREAD",
        "CANCELUPDATE",
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
        if self.login is not None:  # RFC 7889: the largest APPEND we take
            return f"{caps} {AUTH_CAPABILITIES} APPENDLIMIT={self.append_limit}"
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
        raise Silent()

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
        if len(line) > MAX_AUTH_RESPONSE:
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
        folders.subscribe_special_folders(login.maildir)
        self.state = "authenticated"
        track(login.mailbox_id, self.stream)

    # --- authenticated, any mailbox --------------------------------------------------------

    @property
    def user_store(self) -> UserStore:
        assert self.store is not None
        return self.store

    def unselect(self) -> None:
        if self.selected is not None and self.store is not None:
            self.store.close(self.selected.index)
        self.selected = None
        if self.login is not None and self.state != "logout":
            self.state = "authenticated"

    async def cmd_compress(self, command: Command) -> str:
        """RFC 4978 COMPRESS DEFLATE: worth it on slow links (mobile clients)."""
        if self.stream.compressed:
            raise No("Compression is already active.", "COMPRESSIONACTIVE")
        if command.args["mechanism"] != "DEFLATE":
            raise Bad("Unknown compression mechanism (DEFLATE is offered).")
        self.send(f"{command.tag} OK DEFLATE active.")
        await self.stream.start_compression()
        raise Silent()

    # --- NOTIFY (RFC 5465) -----------------------------------------------------------------

    async def cmd_notify(self, command: Command) -> str:
        spec = notify.build(command.args, _to_mutf7 if self.utf8_names else str)
        self.stop_notifying()
        if spec.filters or spec.selected:
            self.notifier = notify.Notifier(self, spec)
            self.notifier.start()
        return "NOTIFY completed."

    def stop_notifying(self) -> None:
        if self.notifier is not None:
            self.notifier.stop()
            self.notifier = None

    async def sync(self, expunges: bool) -> bool:
        """As `MessageCommands.sync`, then NOTIFY's MessageNew fetch attributes for the
        messages the client just heard of (RFC 5465 5.2)."""
        selected = self.selected
        known = len(selected.view) if selected is not None else 0
        reported = await super().sync(expunges)
        spec = self.notifier.spec if self.notifier is not None else None
        if spec and spec.fetch and selected is not None and self.selected is selected:
            new = (known + 1, len(selected.view))
            if new[1] >= new[0]:
                args = {"set": [new], "items": list(spec.fetch)}
                await self.cmd_fetch(Command("*", "FETCH", False, args))
        return reported

    async def notify_selected(self) -> None:
        """Unsolicited news of the selected mailbox (NOTIFY SET (SELECTED ...))."""
        if self.notifier is None or self.selected is None or not self.notifier.spec.selected:
            return
        await self.sync(expunges=self.notifier.spec.immediate_expunges)

    async def cmd_enable(self, command: Command) -> str:
        """RFC 5161: answers the extensions this command turned on."""
        enabled = []
        for name in command.args["capabilities"]:
            if name == "CONDSTORE" and not self.condstore:
                self.condstore = True
                enabled.append(name)
            elif name == "QRESYNC" and not self.qresync:
                self.qresync = self.condstore = True  # QRESYNC implies CONDSTORE
                enabled.append(name)
            elif name == "UTF8=ACCEPT" and not self.utf8:
                self.utf8 = True
                enabled.append(name)
            elif name == "IMAP4REV2" and not self.rev2:
                self.rev2 = True
                enabled.append(rev2.NAME)
                if self.selected is not None:  # late (RFC 9051 6.3.1): \Recent ends now
                    self.selected.recent.clear()
                    self.selected.recent_told = 0
        self.send(" ".join(["* ENABLED", *enabled]))
        return "ENABLE completed."


def _to_mutf7(name: str) -> str:
    return name if folders.normalize(name) == "INBOX" else folders.encode_mutf7(name)


async def handle(stream: Stream, settings: AccessSettings) -> None:
    session = ImapSession(stream, settings)
    await session.run()
