"""SMTP decisions: who may send what to whom, through aiosmtpd's `handle_*` hooks.

One policy object per listener kind:
- `smtp` (port 25): mail for hosted addresses from anyone; no AUTH; greylisting;
  never an open relay (554 5.7.1);
- `submission` (port 587): signed-in mailbox users only, after STARTTLS; they may send
  anywhere, from their own addresses only;
- `lmtp`: a Postfix front end hands over mail already accepted; one reply per
  recipient after DATA.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import logging
from typing import Any, Literal

from aiosmtpd.smtp import MISSING, AuthResult, Envelope, Session

from courriel.accounts.addresses import parse_address
from courriel.config import Config
from courriel.dbthread import run_db
from courriel.delivery import quota
from courriel.delivery.body import Body
from courriel.delivery.recipients import Classified, classify, classify_cached
from courriel.delivery.replies import Outcome, TemporaryFailure
from courriel.delivery.router import Incoming, NotForTheLoop, accept
from courriel.delivery.smtp import hooks, protocol
from courriel.delivery.smtp.protocol import HookNames
from courriel.delivery.space import enough_space
from courriel.errors import ValidationError
from courriel.inbound import gate
from courriel.inbound.settings import FilterSettings
from courriel.networks import in_networks, parse_networks
from courriel.outbound.spool import new_id
from courriel.stats.smtp import counted_data, counted_rcpt

log = logging.getLogger("courriel.smtp")
Kind = Literal["smtp", "submission", "lmtp", "relay"]
TEMPFAIL = "451 4.3.0 Temporary local problem, try again later"


def _size_option(options: list[str]) -> int:
    for option in options:
        if option.upper().startswith("SIZE="):
            try:
                return int(option[5:])
            except ValueError:
                return 0
    return 0


class SmtpPolicy(HookNames):
    def __init__(self, config: Config, kind: Kind) -> None:
        self.config = config
        self.kind = kind
        self.max_recipients = config.smtp.max_recipients
        self.trusted = parse_networks(config.smtp.trusted_networks)
        self.filters = FilterSettings.from_config(config)
        self.authserv_id = config.hostname
        # Mail from the Postfix edge was accepted there already: refusing it now
        # would make Postfix bounce it (backscatter). What Postfix can enforce is in
        # the configuration `courriel edge postfix` writes; the rest is kept as sent,
        # so the content rules are not even looked at (`DataSink`).
        self.checks_content = kind not in ("lmtp", "relay")

    # -- helpers ---------------------------------------------------------------------
    def _client_ip(self, session: Session) -> str:
        peer = session.peer
        return str(peer[0]) if isinstance(peer, tuple) else str(peer or "")

    def _trusted(self, ip: str) -> bool:
        return in_networks(ip, self.trusted)

    @staticmethod
    def _login(session: Session) -> str | None:
        return session.auth_data if session.authenticated else None  # type: ignore[return-value]

    def _checked_client(self, session: Session) -> gate.Client | None:
        """The client whose mail the incoming checks judge, or None when they do not
        apply: port 25 from outside the trusted networks, or LMTP with the original
        client given by XFORWARD (Postfix edge); never a signed-in user."""
        if self._login(session):
            return None
        if self.kind == "smtp":
            ip = self._client_ip(session)
            return None if self._trusted(ip) else gate.Client(ip, session.host_name or "")
        if self.kind == "lmtp":
            client = gate.forwarded_client(session)
            if client is not None and not self._trusted(client.ip):
                return client
        return None

    def _vouched_unchecked(self, session: Session) -> bool:
        """Mail that is not checked but that we vouch for all the same (our DKIM on its
        forwards): a signed-in user's, or from `[smtp] trusted_networks` on port 25 (or
        named by XFORWARD); never LMTP without XFORWARD, whose origin is unknown."""
        if self._login(session):
            return True
        if self.kind == "lmtp":
            client = gate.forwarded_client(session)
            return client is not None and (client.local or self._trusted(client.ip))
        return self._trusted(self._client_ip(session))

    # -- XFORWARD (LMTP, Postfix edge) ---------------------------------------------------
    async def handle_XFORWARD(
        self, server: Any, session: Session, envelope: Envelope, arg: str
    ) -> str:
        if self.kind != "lmtp" or not gate.may_xforward(self._client_ip(session), self.filters):
            return "550 5.7.0 Error: insufficient authorization"
        if envelope.mail_from:
            return "503 5.5.1 Error: MAIL transaction in progress"
        return gate.take_xforward(session, arg)

    # -- EHLO --------------------------------------------------------------------------
    async def handle_EHLO(
        self,
        server: Any,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        lines = [r for r in responses[:-1] if self.kind == "submission" or "AUTH" not in r]
        lines += ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"]
        if self.kind == "lmtp" and gate.may_xforward(self._client_ip(session), self.filters):
            lines.append("250-" + gate.XFORWARD_ATTRIBUTES)
        return [*lines, responses[-1]]

    # -- AUTH (submission only, after STARTTLS: aiosmtpd enforces TLS) ----------------
    @staticmethod
    async def _first_value(server: Any, args: list[str], challenge: str) -> bytes | AuthResult:
        """The initial response given with the command, or the answer to a challenge;
        an AuthResult when there is none or it is not base64."""
        if len(args) == 1:
            answer = await server.challenge_auth(challenge)
            return AuthResult(success=False, handled=True) if answer is MISSING else answer
        try:
            return base64.b64decode(args[1].encode(), validate=True)
        except (binascii.Error, ValueError):
            return AuthResult(
                success=False, handled=False, message="501 5.5.2 Cannot decode base64"
            )

    async def auth_PLAIN(self, server: Any, args: list[str]) -> AuthResult:
        blob = await self._first_value(server, args, "")
        if isinstance(blob, AuthResult):
            return blob
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            return AuthResult(
                success=False, handled=False, message="501 5.5.2 Cannot split the AUTH PLAIN value"
            )
        return await self._verify(server, parts[1], parts[2])

    async def auth_LOGIN(self, server: Any, args: list[str]) -> AuthResult:
        login = await self._first_value(server, args, server.AuthLoginUsernameChallenge)
        if isinstance(login, AuthResult):
            return login
        password = await server.challenge_auth(server.AuthLoginPasswordChallenge)
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        return await self._verify(server, login, password)

    async def _verify(self, server: Any, login_raw: bytes, password_raw: bytes) -> AuthResult:
        from courriel.accounts.signin import Door, Outcome, asign_in

        if self.kind != "submission":
            return AuthResult(
                success=False,
                handled=False,
                message="503 5.5.1 AUTH is only offered on the submission port",
            )
        login = login_raw.decode("utf-8", "replace").strip()
        password = password_raw.decode("utf-8", "replace")
        result = await asign_in(login, password, self._client_ip(server.session), Door.SMTP)
        if result.ok and result.mailbox is not None:
            return AuthResult(success=True, auth_data=result.mailbox.login)
        if result.outcome is Outcome.THROTTLED:
            message = f"454 4.7.0 Too many failed logins, try again in {result.wait} s"
        elif result.outcome is Outcome.DISABLED:
            message = "535 5.7.8 Login temporarily disabled by the domain owner"
        else:
            message = "535 5.7.8 Authentication credentials invalid"
        return AuthResult(success=False, handled=False, message=message)

    # -- MAIL ------------------------------------------------------------------------
    async def handle_MAIL(
        self,
        server: Any,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        login = self._login(session)
        # aiosmtpd hands the null sender over as "<>" (and needs mail_from non-empty).
        sender = "" if address == "<>" else address
        if sender:
            try:
                parse_address(sender)
            except ValidationError:
                return "553 5.1.3 Bad sender address syntax"
        if self.kind == "submission":
            if not login:
                return "530 5.7.0 Authentication required"
            if not await run_db(_owns_address, login, sender):
                return f"553 5.7.1 <{address}>: sender address not owned by user {login}"
        if self.kind == "relay" and not gate.may_xforward(self._client_ip(session), self.filters):
            # Only the Postfix edge hands over what its signed-in users submitted.
            return "550 5.7.0 Not an edge host of this platform ([lmtp] xforward_hosts)"
        if not enough_space(_size_option(options)):
            return "452 4.3.1 Insufficient system storage, try again later"
        envelope.mail_from = address
        envelope.sender = sender  # type: ignore[attr-defined]
        envelope.mail_options.extend(options)
        envelope.resolutions = []  # type: ignore[attr-defined]
        envelope.srs_returns = {}  # type: ignore[attr-defined]
        # SPF is checked once: at the first RCPT when greylisting wants it, else with
        # the other checks after DATA (one trip to a worker thread instead of two).
        envelope.checked_client = self._checked_client(session)  # type: ignore[attr-defined]
        envelope.spf = None  # type: ignore[attr-defined]
        return "250 2.1.0 OK"

    # -- RCPT ------------------------------------------------------------------------
    @counted_rcpt
    async def handle_RCPT(
        self,
        server: Any,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        # A signed-in user may send anywhere; so may the edge's submission service.
        may_relay = bool(self._login(session)) or self.kind == "relay"
        classified = classify_cached(address, may_relay=may_relay) or await run_db(
            classify, address, may_relay=may_relay
        )
        if classified.kind == "refused":
            assert classified.refusal is not None
            log.info(
                "refused RCPT <%s> from %s: %s",
                address,
                self._client_ip(session),
                classified.refusal.text,
            )
            return classified.refusal.reply()
        if classified.kind == "local":
            assert classified.resolution is not None
            refusal = _quota_refusal(classified, _size_option(envelope.mail_options), cached=True)
            if refusal is _UNKNOWN:
                refusal = await run_db(
                    _quota_refusal, classified, _size_option(envelope.mail_options)
                )
            if refusal:
                return refusal
            deferred = await self._greylist(session, envelope, [address], "rcpt")
            if deferred:
                return deferred
        index = len(envelope.rcpt_tos)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        envelope.resolutions.append(classified.resolution)  # type: ignore[attr-defined]
        if classified.kind == "srs_return":
            envelope.srs_returns[index] = classified.srs_target  # type: ignore[attr-defined]
        return "250 2.1.5 OK"

    async def _greylist(
        self,
        session: Session,
        envelope: Envelope,
        recipients: list[str],
        stage: Literal["rcpt", "data"],
        *,
        asked_by_filter: bool = False,
    ) -> str | None:
        """The 451 reply when greylisting defers one of `recipients`, else None.

        Only port 25, unauthenticated, outside the trusted networks (on LMTP the
        Postfix edge greylists through the policy service, unless rspamd asks for
        it: `asked_by_filter`). The client's host name is left to the engine
        (forward-confirmed reverse DNS): the HELO name is the client's own claim and
        must never whitelist it. An SPF pass for the sender's domain lets the engine
        treat the domain's authorised servers as one sender.
        """
        client: gate.Client | None = getattr(envelope, "checked_client", None)
        if client is None or (self.kind != "smtp" and not asked_by_filter):
            return None
        if hooks.greylisting_off():
            return None
        spf = getattr(envelope, "spf", None)
        if spf is None and self.config.greylist.enabled:
            spf = envelope.spf = await gate.check_spf(client, envelope.sender)  # type: ignore[attr-defined]
        for recipient in recipients:
            verdict = await hooks.greylist(
                client_ip=client.ip,
                client_name=None,
                sender=envelope.sender,  # type: ignore[attr-defined]
                recipient=recipient,
                stage=stage,
                spf_domain=gate.spf_domain(spf),
            )
            if verdict.deferred:
                return f"451 4.7.1 {verdict.text}"
            if verdict.header:
                envelope.greylist_header = verdict.header  # type: ignore[attr-defined]
        return None

    # -- DATA ------------------------------------------------------------------------
    @counted_data
    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> Any:
        try:
            return await self._data(server, session, envelope)
        finally:
            gate.forget_xforward(session)  # XFORWARD describes one transaction
            if isinstance(envelope.content, Body):
                envelope.content.discard()  # delivered or refused: the spool file goes

    async def handle_RSET(self, server: Any, session: Session, envelope: Envelope) -> str:
        gate.forget_xforward(session)
        return "250 2.0.0 OK"

    def _answer(self, envelope: Envelope, reply: str) -> Any:
        return [reply] * len(envelope.rcpt_tos) if self.kind == "lmtp" else reply

    async def _data(self, server: Any, session: Session, envelope: Envelope) -> Any:
        # The whole message, or a big one's spool file (`Body`) with its header block.
        content: bytes | Body = envelope.content  # type: ignore[assignment]
        head = content.head if isinstance(content, Body) else content
        eight_bit = envelope.smtp_utf8 or any(
            o.upper() == "BODY=8BITMIME" for o in envelope.mail_options
        )
        # The content rules were checked as DATA arrived (not for the edge's mail).
        check = envelope.content_check  # type: ignore[attr-defined]
        refusal = None if check is None else check.outcome(eight_bit_declared=eight_bit)
        if refusal is not None:
            return self._answer(envelope, refusal.reply())
        login = self._login(session)
        if login is None and (
            self.kind == "relay" or (self.kind == "lmtp" and gate.forwarded_client(session))
        ):
            # Submitted at the Postfix edge by a signed-in user: theirs, not a
            # stranger's mail to check (Postfix checked the password and the sender).
            login = gate.edge_login(head)
            if login:
                envelope.checked_client = None  # type: ignore[attr-defined]
            elif self.kind == "relay":
                return self._answer(
                    envelope, "550 5.7.0 Only mail that a user submitted at the edge is taken here"
                )
        if login:
            # The header From too must be the user's own (the envelope rule's twin).
            foreign = await run_db(gate.foreign_header_from, login, head)
            if foreign is not None:
                return self._answer(
                    envelope,
                    f"553 5.7.1 <{foreign}>: header From address not owned by user {login}",
                )
        resolutions = envelope.resolutions  # type: ignore[attr-defined]
        if envelope.sender == "":  # type: ignore[attr-defined]
            # A bounce passes RCPT (its recipients are judged one by one here, once
            # the whole message is known), like postgrey under smtpd_data_restrictions.
            local = [a for a, r in zip(envelope.rcpt_tos, resolutions, strict=True) if r]
            deferred = await self._greylist(session, envelope, local, "data")
            if deferred:
                return self._answer(envelope, deferred)
        client: gate.Client | None = envelope.checked_client  # type: ignore[attr-defined]
        screening = None
        queue_id = new_id()
        if client is not None:
            if isinstance(content, Body) and len(content) <= self.filters.whole_check_limit:
                content = await asyncio.to_thread(content.read)  # checked whole after all
            complete = not isinstance(content, Body)
            targets = gate.targets(envelope.rcpt_tos, resolutions)
            screening = await gate.screen(
                content if complete else head,
                settings=self.filters,
                authserv_id=self.authserv_id,
                client=client,
                sender=envelope.sender,  # type: ignore[attr-defined]
                targets=targets,
                spf=envelope.spf,  # type: ignore[attr-defined]
                queue_id=queue_id,
                complete=complete,
            )
            if screening.reply is not None:
                log.info("refused DATA from %s: %s", client.ip, screening.reply)
                return self._answer(envelope, screening.reply)
            if screening.all_refused:
                log.info("refused DATA from %s: %s", client.ip, screening.replies[0])
                return self._answer(envelope, screening.replies[0])
            if screening.greylist:
                local = [a for a, r in zip(envelope.rcpt_tos, resolutions, strict=True) if r]
                deferred = await self._greylist(
                    session, envelope, local, "data", asked_by_filter=True
                )
                if deferred:
                    return self._answer(envelope, deferred)
            content = (
                screening.content if complete else content.replace_head(screening.content)  # type: ignore[union-attr]
            )
        header = getattr(envelope, "greylist_header", None)
        if header:
            line = header.encode("utf-8", "replace").rstrip(b"\r\n") + b"\r\n"
            if isinstance(content, Body):
                content = content.replace_head(line + content.head)
            else:
                content = line + content
        ssl = session.ssl or {}
        incoming = Incoming(
            sender=envelope.sender,  # type: ignore[attr-defined]
            recipients=list(envelope.rcpt_tos),
            resolutions=list(resolutions),
            srs_returns=dict(envelope.srs_returns),  # type: ignore[attr-defined]
            content=content,
            client_ip=self._client_ip(session),
            helo=session.host_name or "",
            tls=_tls_description(ssl),
            authenticated=login,
            protocol=_protocol(self.kind, bool(ssl), bool(session.authenticated)),
            defer_full_mailboxes=self.kind != "lmtp",
            queue_id=queue_id,
            vouched=(
                bool(login) or self._vouched_unchecked(session)
                if screening is None
                else screening.vouched
            ),
        )
        if screening is not None:
            gate.apply(screening, incoming, per_recipient_replies=self.kind == "lmtp")
        try:
            outcomes = await _store(incoming, server)
        except TemporaryFailure as failure:
            return self._answer(envelope, failure.outcome.reply())
        if self.kind == "lmtp":
            return [o.reply() for o in outcomes]
        accepted = [o for o in outcomes if o.ok]
        refused = [
            (r, o)
            for index, (r, o) in enumerate(zip(incoming.recipients, outcomes, strict=True))
            if not o.ok and index not in incoming.refused
        ]
        if not accepted:
            return next(o for o in outcomes if not o.ok).reply()
        if refused:
            await run_db(_bounce_refused, incoming, refused)
        return accepted[0].reply()

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %s: %s", type(error).__name__, error, exc_info=error)
        return TEMPFAIL


async def _store(incoming: Incoming, connection: protocol.CourrielSMTP) -> list[Outcome]:
    """`accept` on the event loop when no other connection of this process is busy and
    the message is plain local delivery from memory; else in a database thread."""
    if protocol.alone(connection):
        try:
            return accept(incoming, on_loop=True)
        except NotForTheLoop:
            pass
    return await run_db(accept, incoming)


def _tls_description(ssl: dict[str, Any]) -> str | None:
    if not ssl:
        return None
    cipher = ssl.get("cipher")
    if isinstance(cipher, tuple) and len(cipher) >= 2:
        return f"{cipher[1]} {cipher[0]}"
    return "TLS"


def _protocol(kind: Kind, tls: bool, authenticated: bool) -> str:
    if kind == "lmtp":
        return "LMTP"
    if kind == "relay":
        return "ESMTPA"
    return "ESMTP" + ("S" if tls else "") + ("A" if authenticated else "")


def _owns_address(login: str, address: str) -> bool:
    """A signed-in user may send from any address that delivers to their mailbox."""
    from courriel.accounts.resolution import resolve

    if not address:
        return False
    return login in resolve(address).reached


_UNKNOWN = "unknown"


def _quota_refusal(classified: Classified, size: int, *, cached: bool = False) -> str | None:
    """Refuse at RCPT when a local copy cannot be stored and nothing else happens to
    the mail: 452 4.2.2 (full, retry later) or 552 5.2.2 (bigger than the quota).
    With `cached`, only mailbox rows already in the routing cache are used (no
    database access, safe on the event loop); _UNKNOWN if one is missing."""
    from courriel.accounts.routing_cache import cache, cached_mailboxes

    resolution = classified.resolution
    assert resolution is not None
    if resolution.forwards:
        return None  # forwarding keeps working when the mailbox is full
    ids = [copy.mailbox_id for copy in resolution.copies]
    if cached:
        rows = [cache.peek(("mailbox", i)) for i in ids]
        if any(row is None or not quota.domain_used_is_known(row.domain) for row in rows):
            return _UNKNOWN
        mailboxes = rows
    else:
        mailboxes = list(cached_mailboxes(ids).values())
    for mailbox in mailboxes:
        if quota.too_big_ever(mailbox, size):
            return "552 5.2.2 Message too big for the mailbox quota"
        if not quota.has_room(mailbox, size, cached=cached):
            return "452 4.2.2 Mailbox full, try again later"
    return None


def _bounce_refused(incoming: Incoming, refused: list[tuple[str, Any]]) -> None:
    from courriel.outbound.dsn import bounce_now

    bounce_now(incoming.sender, incoming.head, [(r, o.reply()) for r, o in refused])


# aiosmtpd reads the EHLO hook's signature at every connection: give it once.
SmtpPolicy.handle_EHLO.__signature__ = inspect.signature(SmtpPolicy.handle_EHLO)  # type: ignore[attr-defined]
