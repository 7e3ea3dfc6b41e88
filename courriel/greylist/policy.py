"""Postfix policy delegation (SMTPD_POLICY_README) for greylisting.

Postfix sends `name=value` lines ended by an empty line and waits for one
`action=...` line and an empty line, many requests per connection. This module owns
the wire format and the connection state (`PolicyConnection`); the decision is the
engine's (`PolicyHandler` only maps a request onto `Engine.evaluate` and the verdict
onto an action).

Main.cf of a Postfix front end:

    smtpd_recipient_restrictions = ..., reject_unauth_destination,
        check_policy_service inet:127.0.0.1:10023
    smtpd_data_restrictions = check_policy_service inet:127.0.0.1:10023

(the second line greylists null-sender mail after DATA, see `engine.check`).

Bad input never crashes the server or blocks other clients: lines without `=` are
ignored, a request without the needed attributes gets `DUNNO`, a request larger
than `MAX_REQUEST` closes the connection, and a client that stops mid-request only
holds its own connection until `IDLE_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import cast

from courriel.greylist.engine import Engine, Miss, Stage, Verdict

log = logging.getLogger("courriel.greylist.policy")

MAX_REQUEST = 64 * 1024  # bytes; Postfix sends well under 2 KiB
MAX_VALUE = 2048  # characters kept of one attribute value
MAX_QUEUED = 32  # pipelined requests waiting on one connection before reading pauses
IDLE_TIMEOUT = 600.0  # Postfix closes idle policy connections after 300 s
HEADERED_INSTANCES = 16
REQUIRED = ("client_address", "sender", "recipient")


# The attributes the decision needs; Postfix sends about thirty, the rest are skipped.
_ATTRIBUTES = re.compile(
    rb"^(request|protocol_state|client_address|client_name|sender|recipient|instance"
    rb"|sasl_username|helo_name)=(.*)$",
    re.MULTILINE,
)


def parse_request(block: bytes) -> dict[str, str]:
    """The attributes we use, from `name=value` lines (anything else is ignored, as
    postgrey does: unknown attributes, lines without `=`, binary garbage)."""
    return {
        name.decode(): value.decode("utf-8", "replace")[:MAX_VALUE]
        for name, value in _ATTRIBUTES.findall(block)
    }


def format_answer(action: str) -> bytes:
    return b"action=" + action.replace("\n", " ").encode("utf-8", "replace") + b"\n\n"


@dataclass(slots=True)
class _Request:
    instance: str
    now: float


class PolicyHandler:
    """One policy request in, one Postfix action out."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def answer(self, attrs: dict[str, str], headered: deque[str]) -> str | Awaitable[str]:
        """The action at once when memory suffices, else an awaitable of it."""
        if attrs.get("request") != "smtpd_access_policy":
            log.warning("policy request of unknown type %r: DUNNO", attrs.get("request", "")[:50])
            return "DUNNO"
        if attrs.get("sasl_username"):
            return "DUNNO"  # authenticated submission is never greylisted
        state = attrs.get("protocol_state", "RCPT").upper()
        null_sender = not attrs.get("sender", "").strip()
        stage: Stage
        if state == "RCPT":
            stage = "rcpt"
        elif state in ("DATA", "END-OF-MESSAGE") and null_sender:
            stage = "data"
        else:
            return "DUNNO"
        missing = [name for name in REQUIRED if name not in attrs]
        if missing or not attrs["client_address"] or not attrs["recipient"]:
            log.warning(
                "policy request without %s: DUNNO", ", ".join(missing) or "client or recipient"
            )
            return "DUNNO"
        request = _Request(attrs.get("instance", ""), self.engine.clock())
        outcome = self._evaluate(attrs, request, stage)
        if isinstance(outcome, Miss):
            verdict = self.engine.resolve_inline(outcome, request.now)
            if verdict is None:
                return self._resolve(outcome, attrs, request, stage, headered)
            outcome = verdict
        return self._decided(outcome, attrs, request, stage, headered)

    def _decided(
        self,
        verdict: Verdict,
        attrs: dict[str, str],
        request: _Request,
        stage: Stage,
        headered: deque[str],
    ) -> str | Awaitable[str]:
        """The action, after the SPF chance for a sender about to be greylisted."""
        if verdict.deferred and attrs["sender"].strip():
            return self._with_spf(verdict, attrs, request, stage, headered)
        return self.action(verdict, request, headered)

    def _evaluate(
        self, attrs: dict[str, str], request: _Request, stage: Stage, spf_domain: str | None = None
    ) -> Verdict | Miss:
        return self.engine.evaluate(
            client_ip=attrs["client_address"],
            client_name=attrs.get("client_name") or "unknown",
            sender=attrs["sender"],
            recipient=attrs["recipient"],
            now=request.now,
            stage=stage,
            spf_domain=spf_domain,
        )

    async def _resolve(
        self,
        miss: Miss,
        attrs: dict[str, str],
        request: _Request,
        stage: Stage,
        headered: deque[str],
    ) -> str:
        decided = self._decided(
            await self.engine.resolve(miss, request.now), attrs, request, stage, headered
        )
        return decided if isinstance(decided, str) else await decided

    async def _with_spf(
        self,
        deferred: Verdict,
        attrs: dict[str, str],
        request: _Request,
        stage: Stage,
        headered: deque[str],
    ) -> str:
        """A sender about to be greylisted gets the same chance as on our own port 25:
        when its domain's SPF authorises this client, the triplet is the domain's (a
        retry from another server of its farm is the same sender, and a domain whose
        authorised mail passed once is not greylisted again). Known senders never get
        here, so the look-up is paid only by mail that would be deferred."""
        from courriel.inbound.gate import Client, check_spf, spf_domain

        client = Client(attrs["client_address"], attrs.get("helo_name", ""))
        try:
            domain = spf_domain(await check_spf(client, attrs["sender"].strip()))
        except Exception:  # DNS trouble: greylisting as without SPF
            log.warning("SPF look-up for the policy service failed", exc_info=True)
            domain = None
        if domain is None:
            return self.action(deferred, request, headered)
        outcome = self._evaluate(attrs, request, stage, spf_domain=domain)
        if isinstance(outcome, Miss):
            outcome = await self.engine.resolve(outcome, request.now)
        return self.action(outcome, request, headered)

    def action(self, verdict: Verdict, request: _Request, headered: deque[str]) -> str:
        if verdict.deferred:
            return f"DEFER_IF_PERMIT 4.7.1 {verdict.text}"
        if verdict.header:
            # One header per message, even when several of its recipients pass at once.
            if request.instance and request.instance in headered:
                return "DUNNO"
            headered.append(request.instance)
            return f"PREPEND {verdict.header}"
        return "DUNNO"

    def failure(self) -> str:
        """What to answer when something unexpected went wrong."""
        if self.engine.settings.fail_open:
            return "DUNNO"
        return "DEFER_IF_PERMIT 4.7.1 Greylisting temporarily unavailable, please retry later"


class PolicyConnection(asyncio.Protocol):
    """One Postfix smtpd process's connection: requests answered in order."""

    def __init__(self, server: PolicyServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.queue: deque[bytes] = deque()
        self.headered: deque[str] = deque(maxlen=HEADERED_INSTANCES)
        self.waiting: asyncio.Future[str] | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.paused = False
        self.last_active = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio.Transport).
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.queue.clear()
        self.server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        buffer = self.buffer
        buffer += data
        if b"\r" in data:
            buffer[:] = buffer.replace(b"\r\n", b"\n")
        while (end := buffer.find(b"\n\n")) >= 0:
            block = bytes(buffer[:end])
            del buffer[: end + 2]
            if block.strip(b"\n"):
                self.queue.append(block)
        if len(buffer) > MAX_REQUEST:
            log.warning("policy request larger than %d bytes: connection closed", MAX_REQUEST)
            self.close()
            return
        self._drain()

    def _drain(self) -> None:
        handler = self.server.handler
        while self.queue and self.waiting is None and not self.closed:
            attrs = parse_request(self.queue.popleft())
            try:
                result = handler.answer(attrs, self.headered)
            except Exception:
                log.exception("policy request failed")
                result = handler.failure()
            if isinstance(result, str):
                self._send(result)
            else:
                self.waiting = asyncio.ensure_future(result)
                self.waiting.add_done_callback(self._done)
        transport = self.transport
        if transport is None or self.closed:
            return
        if len(self.queue) > MAX_QUEUED and not self.paused:
            transport.pause_reading()
            self.paused = True
        elif self.paused and len(self.queue) <= MAX_QUEUED // 2:
            transport.resume_reading()
            self.paused = False

    def _done(self, future: asyncio.Future[str]) -> None:
        self.waiting = None
        try:
            action = future.result()
        except Exception:
            log.exception("policy request failed")
            action = self.server.handler.failure()
        self._send(action)
        self._drain()

    def _send(self, action: str) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(format_answer(action))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class PolicyServer:
    """The listener: accepts Postfix connections and closes idle ones."""

    def __init__(self, engine: Engine) -> None:
        self.handler = PolicyHandler(engine)
        self.connections: set[PolicyConnection] = set()
        self.server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: PolicyConnection(self), sock=sock)
        self._sweeper = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(60.0, IDLE_TIMEOUT / 4))
            horizon = time.monotonic() - IDLE_TIMEOUT
            for connection in [c for c in self.connections if c.last_active < horizon]:
                connection.close()

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.server is not None:
            self.server.close()
        for connection in list(self.connections):
            connection.close()
        if self.server is not None:
            await self.server.wait_closed()
