"""Plain local mail stored on the event loop, without the trip to a thread.

When a process serves one mail session, `accept(on_loop=True)` stores the message on
the event loop itself. It may only do so from memory: the routing cache, the domain's
usage, nothing to forward, answer or queue. Anything else raises NotForTheLoop
before anything is stored, and the message goes to a thread as before.
"""

from __future__ import annotations

import asyncio
import email
import socket
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from courriel.accounts.routing_cache import cache, cached_mailboxes
from courriel.accounts.services.mailboxes import (
    modify_mailbox,
    set_autoreply,
    set_forwarding,
)
from courriel.delivery import quota, router
from courriel.delivery.body import Body
from courriel.delivery.router import Incoming, NotForTheLoop, accept
from courriel.delivery.smtp import protocol
from courriel.outbound.spool import get_spool
from tests.delivery.test_router import MESSAGE, incoming
from tests.fixtures.accounts import Customer


@pytest.fixture(autouse=True)
def routing_cache(monkeypatch):
    """The routing cache on, as in production (the suite turns it off in-process)."""
    from courriel.config import get_config

    monkeypatch.setitem(get_config().smtp, "routing_cache_seconds", 60)
    cache.clear()
    yield
    cache.clear()


def stored(box) -> list[bytes]:
    return [path.read_bytes() for path in (router.maildir_of(box) / "new").iterdir()]


def on_the_loop(message: Incoming):
    """`accept(on_loop=True)` called from a running event loop, as the SMTP server
    does: there Django refuses any database query outright."""

    async def main():
        return accept(message, on_loop=True)

    return asyncio.run(main())


def test_plain_local_mail_is_stored_on_the_loop_as_in_a_thread(two_boxes) -> None:
    one, two = two_boxes
    cached_mailboxes([one.pk, two.pk])  # as at RCPT
    [in_thread] = accept(incoming("one@monsite.be"))  # the domain's usage is known now
    message = incoming("two@monsite.be")  # resolved at RCPT
    with CaptureQueriesContext(connection) as queries:
        [on_loop] = on_the_loop(message)
    assert [q["sql"] for q in queries] == []
    assert in_thread.code == on_loop.code == 250
    [first], [second] = stored(one), stored(two)
    a, b = email.message_from_bytes(first), email.message_from_bytes(second)
    assert a.keys() == b.keys()  # the same trace headers, in the same order
    assert b["Delivered-To"] == "two@monsite.be"
    assert a.get_payload() == b.get_payload() == "hello\r\n"


def _forward(customer, box):
    set_forwarding(customer.actor, box, ["elsewhere@example.net"], keep=True)


def _autoreply(customer, box):
    set_autoreply(customer.actor, box, enabled=True, message="Away until Monday")


def _full(customer, box):
    [first] = stored(box)  # room for that one, not for another
    modify_mailbox(customer.actor, box, quota=len(first) + 100)


def _cold_cache(customer, box):
    cache.clear()


def _domain_usage_unknown(customer, box):
    assert box.domain.top.effective_plan.mail_quota is not None
    quota._domain_usage.clear()


@pytest.mark.parametrize(
    "situation", [_forward, _autoreply, _full, _cold_cache, _domain_usage_unknown]
)
def test_anything_more_goes_to_a_thread_with_nothing_done(
    two_boxes, monsite: Customer, situation
) -> None:
    one = two_boxes[0]
    accept(incoming("one@monsite.be"))  # caches filled, one copy stored
    situation(monsite, one)
    if situation is not _cold_cache:  # the change made known, as a commit does
        cache.clear()
        cached_mailboxes([one.pk])
    message = incoming("one@monsite.be")
    with pytest.raises(NotForTheLoop):
        on_the_loop(message)
    assert len(stored(one)) == 1
    assert list(get_spool().entries()) == []
    [outcome] = accept(message)  # what the server then does, in a thread
    assert outcome.code == 250  # stored, or for the full mailbox queued for later


def test_relayed_mail_and_big_messages_go_to_a_thread(two_boxes, tmp_path) -> None:
    accept(incoming("one@monsite.be"))
    relayed = incoming("one@monsite.be")  # and, from a signed-in user, one for elsewhere
    relayed.recipients.append("someone@example.net")
    relayed.resolutions.append(None)
    with pytest.raises(NotForTheLoop):
        on_the_loop(relayed)
    spooled = tmp_path / "spooled"
    spooled.write_bytes(MESSAGE)
    with pytest.raises(NotForTheLoop):
        on_the_loop(incoming("one@monsite.be", content=Body(spooled, len(MESSAGE), MESSAGE)))
    assert len(stored(two_boxes[0])) == 1
    assert list(get_spool().entries()) == []


@pytest.mark.parametrize(
    "kind, hello, idle_is_busy",
    [("smtp", b"EHLO client.example", True), ("lmtp", b"LHLO edge.example", False)],
)
def test_a_session_may_use_the_loop_unless_another_keeps_the_process_busy(
    monkeypatch, kind: str, hello: bytes, idle_is_busy: bool
) -> None:
    """An SMTP client is busy once connected (one message per connection, most
    often); an LMTP connection only during a transaction (Postfix keeps idle ones)."""
    from courriel.config import get_config
    from courriel.delivery.smtp.protocol import ConnectionLimiter
    from courriel.delivery.smtp.server import SmtpService
    from courriel.tls import ensure_certificate

    ensure_certificate(get_config())
    monkeypatch.setattr(protocol, "CROWDED_MEMORY", 0.5)
    monkeypatch.setattr(protocol, "_last_crowded", -1.0)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    service = SmtpService(get_config(), kind, kind, ConnectionLimiter(0), listener)  # type: ignore[arg-type]
    seen: dict[str, bool] = {}

    async def session() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(*listener.getsockname())
        await reader.readline()  # the banner: the server has the session
        return reader, writer

    async def command(reader, writer, line: bytes) -> None:
        writer.write(line + b"\r\n")
        while (await reader.readline())[3:4] == b"-":
            pass

    def server_side(writer) -> protocol.CourrielSMTP:
        here = writer.get_extra_info("sockname")
        return next(s for s in protocol._sessions if tuple(s.session.peer) == here)

    async def wait_alone(first) -> float:
        started = time.monotonic()
        while not protocol.alone(first) and time.monotonic() - started < 5:
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    async def main() -> None:
        await service.start()
        _, first_writer = await session()
        first = server_side(first_writer)
        seen["alone"] = protocol.alone(first)
        reader, writer = await session()
        await command(reader, writer, hello)
        seen["another, idle"] = protocol.alone(first)
        await command(reader, writer, b"MAIL FROM:<a@example.org>")
        seen["another, sending mail"] = protocol.alone(first)
        await command(reader, writer, b"RSET")
        if idle_is_busy:
            writer.close()
            while len(protocol._sessions) > 1:
                await asyncio.sleep(0.01)
        seen["another, done a moment ago"] = protocol.alone(first)
        waited = await wait_alone(first)
        seen["another, done a while ago"] = protocol.alone(first)
        writer.close()
        first_writer.close()
        await service.stop()
        assert 0.3 < waited < 5

    asyncio.run(main())
    assert seen == {
        "alone": True,
        "another, idle": not idle_is_busy,
        "another, sending mail": False,
        "another, done a moment ago": False,
        "another, done a while ago": True,
    }
