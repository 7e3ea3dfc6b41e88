"""The `[cluster]` listener: where the other nodes hand over copies for the mailboxes
this one holds. LMTP (one reply per recipient) over implicit TLS; a node signs in
with AUTH PLAIN as its hosting server's name and its secret, and nothing else is
accepted before that.

The sender did all the routing; this side stores the bytes it was given under the
file name it was given, after checking that the mailbox is still here (a domain
moved since is passed on to its new home) and has room. Those checks read the
mailbox's row from the routing cache, as mail stored here directly does: reading
it from the database for every copy cost more than the rest of the copy's work. A
copy already stored under that name (a retry after a lost reply) is acknowledged
without a second copy.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import socket
from typing import Any

from aiosmtpd.smtp import AuthResult, Envelope, Session, syntax

from courriel.cluster.wire import BadCopy, CopyRef
from courriel.config import Config
from courriel.delivery.body import Body
from courriel.delivery.smtp.protocol import (
    ConnectionLimiter,
    CourrielLMTP,
    HookNames,
    SessionTemplate,
)

log = logging.getLogger("courriel.cluster")


class NodeLMTP(CourrielLMTP):
    """LMTP whose RCPT carries the copy's description (see courriel.cluster.wire)."""

    @syntax("RCPT TO: <address> MAILBOX=<id> NAME=<name> [FOLDER=<folder>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("RCPT"):
            return
        assert self.envelope is not None
        if not self.envelope.mail_from:
            await self.push("503 5.5.1 Error: need MAIL command")
            return
        rest = self._strip_command_keyword("TO:", arg or "")
        address, raw = self._getaddr(rest) if rest else (None, None)
        if not address:
            await self.push("501 5.5.4 Syntax: RCPT TO:<address> MAILBOX=<id> NAME=<name>")
            return
        params: dict[str, str] = {}
        for item in (raw or "").split():
            key, _, value = item.partition("=")
            params[key.upper()] = value
        await self.push(await self._call_handler_hook("RCPT", address, params))


class NodeHandler(HookNames):
    """Decisions of the `[cluster]` listener (aiosmtpd's `handle_*` and `auth_*`)."""

    # -- AUTH PLAIN: <authzid> NUL <node name> NUL <secret> --------------------------
    async def auth_PLAIN(self, server: Any, args: list[str]) -> AuthResult:
        from courriel.cluster.registry import node_sign_in
        from courriel.dbthread import run_db

        if len(args) != 2:
            return _refused("501 5.5.2 Give AUTH PLAIN <value>")
        try:
            _authzid, name, secret = base64.b64decode(args[1], validate=True).split(b"\x00")
        except (binascii.Error, ValueError):
            return _refused("501 5.5.2 Cannot decode AUTH PLAIN")
        node = name.decode("utf-8", "replace").strip().lower()
        peer = server.session.peer
        ip = str(peer[0]) if isinstance(peer, tuple) else ""
        answer = await run_db(node_sign_in, node, secret.decode("utf-8", "replace"), ip, "cluster")
        if answer > 0:
            return _refused(f"454 4.7.0 Too many failures, wait {answer} s")
        if answer == 0:
            return AuthResult(success=True, auth_data=node)
        return _refused("535 5.7.8 Not a node of this platform")

    # -- envelope ----------------------------------------------------------------------
    async def handle_MAIL(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        envelope.copies = []  # type: ignore[attr-defined]
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, params: dict
    ) -> str:
        try:
            ref = CopyRef.parse(params)
        except BadCopy as error:
            return f"501 5.5.4 {error}"
        envelope.rcpt_tos.append(address)
        envelope.copies.append(ref)  # type: ignore[attr-defined]
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> list[str]:
        from courriel.dbthread import run_db

        sender = "" if envelope.mail_from == "<>" else str(envelope.mail_from)
        node = str(session.auth_data)
        replies = []
        for address, ref in zip(envelope.rcpt_tos, envelope.copies, strict=True):  # type: ignore[attr-defined]
            try:
                replies.append(await run_db(receive, ref, envelope.content, sender, address, node))
            except Exception as error:
                log.exception("copy for mailbox %s from node %s not stored", ref.mailbox_id, node)
                replies.append(f"451 4.3.0 Not stored, try again later ({type(error).__name__})")
        return replies

    async def handle_exception(self, error: Exception) -> str:
        log.error("cluster LMTP session error: %s: %s", type(error).__name__, error, exc_info=error)
        return "451 4.3.0 Temporary local problem, try again later"


def _refused(message: str) -> AuthResult:
    return AuthResult(success=False, handled=False, message=message)


def receive(ref: CopyRef, content: bytes | Body, sender: str, address: str, node: str) -> str:
    """Store one handed-over copy here (in a worker thread); the LMTP reply."""
    from courriel.accounts.routing_cache import cached_mailboxes
    from courriel.cluster.handoff import pass_on
    from courriel.cluster.placement import is_here
    from courriel.delivery import lastmail
    from courriel.delivery.journal import Copy, Record, already_there
    from courriel.delivery.quota import has_room, maildir_of, note_domain_growth, too_big_ever
    from courriel.delivery.router import store_copies
    from courriel.mailstore.maildir import folder_path

    # The routing cache's row, as for mail stored here directly: a domain moved away
    # less than `routing_cache_seconds` ago may still be stored here, and the move's
    # grace period hands such copies on (as it does this node's own late deliveries).
    mailbox = cached_mailboxes([ref.mailbox_id]).get(ref.mailbox_id)
    if mailbox is None:
        return "550 5.1.1 Mailbox deleted"
    size = len(content)
    if not is_here(mailbox.domain.server_id):
        # Moved away since the sender looked: on to its new home, same file name.
        entry = pass_on(ref, content, sender, address, mailbox)
        return f"250 2.0.0 Passed on as {entry.id}"
    maildir = maildir_of(mailbox)
    if already_there(folder_path(maildir, ref.folder), ref.name, size):
        return "250 2.0.0 Already delivered"
    if too_big_ever(mailbox, size):
        return "552 5.2.2 Message too big for the mailbox quota"
    if not has_room(mailbox, size):
        return "452 4.2.2 Mailbox full, try again later"
    copy = Copy(str(maildir), ref.name, b"", mailbox.pk, ref.folder)
    store_copies(Record(ref.name, [copy], content))
    note_domain_growth(mailbox.domain, size)
    lastmail.note([mailbox.pk])
    log.info(
        "from=<%s> to=<%s> mailbox=%s size=%d status=delivered via=node:%s%s",
        sender,
        address,
        mailbox.login,
        size,
        node,
        f" folder={ref.folder}" if ref.folder else "",
    )
    return "250 2.0.0 Delivered"


class NodeListener:
    """The `[cluster]` listener as a `courriel serve` service."""

    name = "cluster"

    def __init__(self, config: Config, sock: socket.socket) -> None:
        from courriel.delivery.body import spool_directory
        from courriel.delivery.smtp.server import LMTP_MARGIN
        from courriel.tls import server_context
        from courriel.units import parse_duration, parse_size

        self.sock = sock
        self.tls = server_context(config)
        self.handler = NodeHandler()
        self.options: dict[str, Any] = {
            "limiter": ConnectionLimiter(0),
            "hostname": config.hostname,
            "ident": "Courriel cluster LMTP",
            "data_size_limit": parse_size(config.mail.message_size_limit, allow_unlimited=False)
            + LMTP_MARGIN,
            "enable_SMTPUTF8": True,
            "timeout": parse_duration(config.smtp.idle_timeout).total_seconds(),
            "spool": spool_directory(config.data_dir),
            "auth_required": True,
            "auth_require_tls": False,  # the whole connection is TLS (implicit)
            "auth_exclude_mechanism": ["LOGIN"],
        }
        self.sessions = SessionTemplate(NodeLMTP, self.handler, self.options)
        self.listening = [f"cluster: lmtps://{config.cluster.bind}:{config.cluster.port}/"]
        self.server: asyncio.AbstractServer | None = None

    def _protocol(self) -> NodeLMTP:
        return self.sessions()  # type: ignore[return-value]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            self._protocol, sock=self.sock, ssl=self.tls, ssl_handshake_timeout=30
        )

    async def stop(self) -> None:
        from courriel.runtime import close_server

        await close_server(self.server)
