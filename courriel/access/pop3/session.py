"""The POP3 state machine of one client (authorization, transaction, update), apart
from the listener. The maildrop is the INBOX through the same shared index as IMAP, so
UIDLs are built from the IMAP UID and UIDVALIDITY the way Dovecot builds them
(`%08Xu%08Xv`, lower-case hex): a client keeps its list when the provider moves to
Dovecot.

Deletions happen only at QUIT (RSET forgets them); a second session on the same
mailbox is refused with `-ERR [IN-USE]` while the first holds the maildrop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging

from courriel.access import auth
from courriel.access.auth import AccessSettings, AuthDenied, Login
from courriel.access.listener import LineTooLong, Stream
from courriel.cluster.proxy import ProxyError, Upstream, pipe, pop3_sign_in
from courriel.cluster.sessions import track
from courriel.dots import dot_stuff
from courriel.mailstore.events import events
from courriel.mailstore.index import FolderIndex, Message
from courriel.mailstore.message_file import MessageFile
from courriel.mailstore.store import UserStore

log = logging.getLogger("courriel.access.pop3")
MAX_LINE = 512
MAX_BAD_COMMANDS = 20
_in_use: set[str] = set()  # maildrops held by a session of this process


def uidl(index: FolderIndex, message: Message) -> str:
    """Dovecot's default `pop3_uidl_format = %08Xu%08Xv`, whose %X writes lower-case
    hex (var-expand.c: `%llx`)."""
    return f"{message.uid:08x}{index.uidvalidity:08x}"


class Pop3Session:
    def __init__(self, stream: Stream, settings: AccessSettings) -> None:
        self.stream = stream
        self.settings = settings
        self.user: str | None = None
        self.login: Login | None = None
        self.store: UserStore | None = None
        self.index: FolderIndex | None = None
        self.messages: list[Message] = []
        self.sizes: list[int] = []
        self.deleted: set[int] = set()
        self.retrieved: set[int] = set()
        self.bad = 0
        self.done = False
        self.upstream: Upstream | None = None  # the session is proxied to this node

    def send(self, line: str) -> None:
        self.stream.write(line.encode("utf-8") + b"\r\n")

    async def run(self) -> None:
        self.send("+OK Courriel POP3 ready.")
        try:
            while not self.done:
                try:
                    line = await self.stream.readline(
                        self.settings.pop3_autologout if self.login else 120
                    )
                except TimeoutError:
                    self.send("-ERR Autologout: idle for too long.")
                    break
                except LineTooLong:
                    self.send("-ERR Line too long.")
                    break
                if not line:
                    break
                await self.execute(line.rstrip(b"\r\n"))
                if self.upstream is not None:
                    await pipe(self.stream, self.upstream)
                    break
                await self.stream.settle()
        except ConnectionError:
            pass
        finally:
            self.release()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.stream.drain()

    async def execute(self, raw: bytes) -> None:
        if len(raw) > MAX_LINE:
            return self.error("Command line too long.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self.error("Commands must be UTF-8 text.")
        verb, _, argument = text.partition(" ")
        verb = verb.upper()
        handler = getattr(self, "cmd_" + verb.lower(), None) if verb.isalpha() else None
        if handler is None:
            return self.error(f"Unknown command {verb[:20]!r}.")
        if self.login is None and verb not in {
            "CAPA",
            "STLS",
            "USER",
            "PASS",
            "AUTH",
            "QUIT",
            "NOOP",
        }:
            return self.error("Log in first (USER and PASS, or AUTH PLAIN).")
        if self.login is not None and verb in {"STLS", "USER", "PASS", "AUTH"}:
            return self.error("Already logged in.")
        try:
            await handler(argument)
            self.bad = 0
        except _Err as error:
            self.error(str(error))
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("POP3 %s failed", verb)
            self.send("-ERR [SYS/TEMP] Internal error; try again.")

    def error(self, message: str) -> None:
        self.send(f"-ERR {message}")
        self.bad += 1
        if self.bad >= MAX_BAD_COMMANDS:
            self.send("-ERR Too many invalid commands; closing.")
            self.done = True

    # --- authorization ---------------------------------------------------------------------

    def _plaintext_ok(self) -> bool:
        return auth.plaintext_allowed(self.settings, self.stream.tls, self.stream.ip)

    async def cmd_capa(self, argument: str) -> None:
        lines = [
            "+OK Capability list follows",
            "CAPA",
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
        ]
        if self.login is None and self._plaintext_ok():
            lines += ["USER", "SASL PLAIN LOGIN"]
        if self.login is None and not self.stream.tls and self.stream.tls_context is not None:
            lines.append("STLS")
        lines += ["IMPLEMENTATION Courriel", "."]
        self.stream.write("".join(f"{line}\r\n" for line in lines).encode())

    async def cmd_stls(self, argument: str) -> None:
        if self.stream.tls or self.stream.tls_context is None:
            raise _Err("TLS is already active." if self.stream.tls else "STLS is not offered.")
        self.send("+OK Begin TLS negotiation.")
        await self.stream.start_tls()
        self.user = None

    def _require_privacy(self) -> None:
        if not self._plaintext_ok():
            raise _Err("[AUTH] Passwords are only accepted over TLS: use STLS or port 995.")

    async def cmd_user(self, argument: str) -> None:
        self._require_privacy()
        if not argument.strip():
            raise _Err("USER needs a login.")
        self.user = argument.strip()
        self.send("+OK Send the password with PASS.")

    async def cmd_pass(self, argument: str) -> None:
        self._require_privacy()
        if self.user is None:
            raise _Err("Send USER first.")
        user, self.user = self.user, None
        await self._sign_in(user, argument)

    async def cmd_auth(self, argument: str) -> None:
        """RFC 5034 AUTH with PLAIN or LOGIN (the mechanisms Dovecot offers too)."""
        mechanism, _, initial = argument.strip().partition(" ")
        if not mechanism:
            self.stream.write(b"+OK Mechanisms follow\r\nPLAIN\r\nLOGIN\r\n.\r\n")
            return
        mechanism = mechanism.upper()
        if mechanism not in {"PLAIN", "LOGIN"}:
            raise _Err(f"Unsupported mechanism {mechanism[:20]}; use PLAIN or LOGIN.")
        self._require_privacy()
        if mechanism == "LOGIN":
            user = self._b64(initial or await self._challenge("VXNlcm5hbWU6"))
            password = self._b64(await self._challenge("UGFzc3dvcmQ6"))
            await self._sign_in(
                user.decode("utf-8", "replace"), password.decode("utf-8", "replace")
            )
            return
        parts = self._b64(initial or await self._challenge("")).split(b"\0")
        if len(parts) != 3:
            raise _Err("Malformed PLAIN response.")
        authzid, user_name, secret = (p.decode("utf-8", "replace") for p in parts)
        if authzid and authzid != user_name:
            raise _Err("[AUTH] Logging in as another user is not allowed.")
        await self._sign_in(user_name, secret)

    async def _challenge(self, text: str) -> str:
        self.send(f"+ {text}")
        await self.stream.drain()
        answer = (await self.stream.readline(120)).strip().decode("ascii", "replace")
        if answer == "*":
            raise _Err("Authentication cancelled.")
        return answer

    @staticmethod
    def _b64(text: str) -> bytes:
        try:
            return base64.b64decode(text if text != "=" else "", validate=True)
        except (binascii.Error, ValueError):
            raise _Err("Invalid base64 in AUTH.") from None

    async def _sign_in(self, user: str, password: str) -> None:
        try:
            login = await auth.authenticate(
                user, password, self.stream.ip, self.settings, door="pop3"
            )
        except AuthDenied as denied:
            code = "SYS/TEMP" if denied.reason in {"unavailable", "throttled"} else "AUTH"
            raise _Err(f"[{code}] {denied.message}") from None
        if login.home is not None:  # held by another hosting server: handed to it
            try:
                self.upstream = await pop3_sign_in(login.home, user, password)
            except ProxyError as error:
                log.warning("POP3 login of %s not handed over: %s", user, error)
                if error.refused:
                    raise _Err("[AUTH] Wrong login or password.") from None
                raise _Err("[SYS/TEMP] The mailbox's server is unavailable; try later.") from None
            self.login = login
            self.send(self.upstream.greeting)
            return
        key = str(login.maildir)
        if key in _in_use:
            raise _Err("[IN-USE] The mailbox is in use by another POP3 session; try later.")
        _in_use.add(key)
        self.login = login
        self.store = UserStore(login.maildir, login.quota)
        try:
            # Delivered files stay in new/ until QUIT, as with Dovecot: then each moves
            # to cur/ in one rename, with its \Seen flag if it was retrieved.
            self.index = index = self.store.open("INBOX")
            self.messages = [index.by_uid[uid] for uid in index.uids]
            self.sizes = [index.size(m) for m in self.messages]
        except Exception:
            self.release()
            raise
        self.send(f"+OK Logged in: {len(self.messages)} messages ({sum(self.sizes)} octets).")
        track(login.mailbox_id, self.stream)

    def release(self) -> None:
        if self.index is not None and self.store is not None:
            self.store.close(self.index)
        self.index = None
        if self.login is not None:
            _in_use.discard(str(self.login.maildir))

    # --- transaction -----------------------------------------------------------------------

    def _number(self, text: str) -> int:
        text = text.strip()
        if not text.isdigit() or len(text) > 9:
            raise _Err("Give a message number.")
        number = int(text)
        if not 1 <= number <= len(self.messages):
            raise _Err(f"No message {number}.")
        if number in self.deleted:
            raise _Err(f"Message {number} is deleted.")
        return number

    async def cmd_stat(self, argument: str) -> None:
        count = sum(1 for n in range(1, len(self.messages) + 1) if n not in self.deleted)
        size = sum(s for n, s in enumerate(self.sizes, 1) if n not in self.deleted)
        self.send(f"+OK {count} {size}")

    async def cmd_list(self, argument: str, uidl_mode: bool = False) -> None:
        assert self.index is not None
        if argument.strip():
            number = self._number(argument)
            value = (
                uidl(self.index, self.messages[number - 1]) if uidl_mode else self.sizes[number - 1]
            )
            self.send(f"+OK {number} {value}")
            return
        lines = ["+OK Listing follows"]
        for number, (message, size) in enumerate(zip(self.messages, self.sizes, strict=True), 1):
            if number not in self.deleted:
                lines.append(f"{number} {uidl(self.index, message) if uidl_mode else size}")
        lines.append(".")
        self.stream.write("".join(f"{line}\r\n" for line in lines).encode())

    async def cmd_uidl(self, argument: str) -> None:
        await self.cmd_list(argument, uidl_mode=True)

    def _source(self, number: int) -> bytes | MessageFile:
        assert self.index is not None
        source = self.index.source(self.messages[number - 1])
        if source is None:
            raise _Err(f"Message {number} was removed by another client.")
        return source

    async def cmd_retr(self, argument: str) -> None:
        number = self._number(argument)
        source = self._source(number)
        await self._send_message(b"+OK %d octets\r\n" % len(source), source, len(source))
        self.retrieved.add(number)

    async def cmd_top(self, argument: str) -> None:
        parts = argument.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise _Err("Usage: TOP message lines.")
        number = self._number(parts[0])
        source = self._source(number)
        split = source.find(b"\r\n\r\n")
        end = len(source) if split < 0 else split + 4
        for _line in range(int(parts[1]) if split >= 0 else 0):
            if end >= len(source):
                break
            found = source.find(b"\n", end)
            end = len(source) if found < 0 else found + 1
        await self._send_message(b"+OK Top of message follows\r\n", source, end)

    async def _send_message(self, first: bytes, source: bytes | MessageFile, end: int) -> None:
        """A multi-line answer with the first `end` bytes of a message, dot-stuffed; a
        big message chunk by chunk, never whole in memory."""
        if isinstance(source, bytes):
            self.stream.write(first + dot_stuff(source[:end]))
            return
        with source:
            self.stream.write(first)
            line_start = True
            last = b"\n"
            for chunk in source.chunks(0, end):
                stuffed = chunk.replace(b"\n.", b"\n..")
                if line_start and chunk[:1] == b".":
                    stuffed = b"." + stuffed
                line_start = chunk[-1:] == b"\n"
                last = chunk[-1:]
                self.stream.write(stuffed)
                await self.stream.pace()
            self.stream.write((b"" if last == b"\n" else b"\r\n") + b".\r\n")

    async def cmd_dele(self, argument: str) -> None:
        number = self._number(argument)
        self.deleted.add(number)
        self.send(f"+OK Message {number} deleted.")

    async def cmd_rset(self, argument: str) -> None:
        self.deleted.clear()
        self.retrieved.clear()
        self.send("+OK Maildrop reset.")

    async def cmd_noop(self, argument: str) -> None:
        self.send("+OK")

    async def cmd_quit(self, argument: str) -> None:
        self.done = True
        if self.login is None or self.index is None:
            self.send("+OK Bye.")
            return
        index = self.index
        index.refresh()
        seen = [self.messages[n - 1] for n in self.retrieved - self.deleted]
        # One write of the new mod-sequences, and the directories' times adopted once,
        # not around each rename.
        with index.own_change():
            for message in seen:
                if message.uid in index.by_uid and "S" not in message.info:
                    index.set_info(message, "".join(sorted(message.info + "S")), 0)
            doomed = [self.messages[n - 1] for n in sorted(self.deleted)]
            doomed = [m for m in doomed if m.uid in index.by_uid]
            gone = index.expunge(doomed, 0)
            index.claim_new()
        if gone or seen:
            events.notify(self.login.maildir)
        self.send(f"+OK Bye: {len(gone)} messages deleted.")


class _Err(Exception):
    pass


async def handle(stream: Stream, settings: AccessSettings) -> None:
    await Pop3Session(stream, settings).run()
