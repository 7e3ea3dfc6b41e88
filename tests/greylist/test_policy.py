"""The Postfix policy service over real sockets: the same scenarios as chapter 13 in
the SMTP server, in Postfix's protocol, and bad input that must never crash or block."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from courriel.accounts.permissions import Actor
from courriel.accounts.services.mailboxes import create_mailbox
from courriel.greylist import services
from courriel.greylist.engine import Engine
from courriel.greylist.models import Triplet
from courriel.greylist.policy import MAX_REQUEST, PolicyServer
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.nsd import PrivateNSD
from tests.greylist.conftest import HOST, Clock, EngineFactory

pytestmark = pytest.mark.django_db(transaction=True)


class Running:
    """A PolicyServer on its own event loop thread, on a free loopback port."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = PolicyServer(engine)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        asyncio.run_coroutine_threadsafe(self.server.start(sock), self.loop).result(5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(5)
        asyncio.run_coroutine_threadsafe(self.engine.aclose(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Client:
    """What a Postfix smtpd process does: one persistent connection, many requests."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.reader = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self) -> str:
        lines = []
        while True:
            line = self.reader.readline()
            assert line, "connection closed by the policy server"
            if line == b"\n":
                break
            lines.append(line.decode().rstrip("\n"))
        assert len(lines) == 1 and lines[0].startswith("action="), lines
        return lines[0].removeprefix("action=")

    def ask(self, **attrs: str) -> str:
        self.send(request(**attrs))
        return self.answer()

    def closed_by_server(self) -> bool:
        self.sock.settimeout(5)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def request(**attrs: str) -> bytes:
    """A request as Postfix 3.7 sends it at RCPT time."""
    values = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": "192.0.2.10",
        "client_name": "unknown",
        "client_port": "41234",
        "reverse_client_name": "unknown",
        "server_address": "127.0.0.1",
        "server_port": "25",
        "helo_name": "mail.example.org",
        "sender": "alice@example.org",
        "recipient": "info@monsite.be",
        "recipient_count": "0",
        "queue_id": "",
        "instance": "1a2b.67e1c0a3.4d5e6.0",
        "size": "0",
        "etrn_domain": "",
        "stress": "",
        "sasl_method": "",
        "sasl_username": "",
        "sasl_sender": "",
        "ccert_subject": "",
        "ccert_issuer": "",
        "ccert_fingerprint": "",
        "encryption_protocol": "TLSv1.3",
        "encryption_cipher": "TLS_AES_256_GCM_SHA384",
        "encryption_keysize": "256",
        "policy_context": "",
        "compatibility_level": "3.6",
        "mail_version": "3.7.11",
    }
    values.update(attrs)
    return "".join(f"{k}={v}\n" for k, v in values.items() if v is not None).encode() + b"\n"


@pytest.fixture
def policy(make_engine: EngineFactory) -> Iterator[Running]:
    running = Running(make_engine(background=True))
    yield running
    running.stop()


@pytest.fixture
def client(policy: Running) -> Iterator[Client]:
    c = Client(policy.port)
    yield c
    c.close()


def deferred(action: str) -> bool:
    return action.startswith("DEFER_IF_PERMIT 4.7.1 Greylisting in effect, please retry in ")


def test_chapter_13_through_postfix_policy_requests(client: Client, clock: Clock) -> None:
    first = client.ask()
    assert first == (
        "DEFER_IF_PERMIT 4.7.1 Greylisting in effect, please retry in 5 minutes "
        "(after 2027-01-15 08:05:00 UTC)"
    )
    clock.advance(60)
    assert deferred(client.ask())  # too early: again
    clock.advance(250)
    passed = client.ask()
    assert passed.startswith(
        f"PREPEND X-Greylist: delayed 310 seconds by Courriel-0.1.0 at {HOST};"
    )
    clock.advance(1)
    assert client.ask(instance="next.message") == "DUNNO"  # trusted: at once, no header


def test_neighbours_and_ipv6_networks(client: Client, clock: Clock) -> None:
    assert deferred(client.ask(client_address="192.0.2.10"))
    assert deferred(client.ask(client_address="2001:db8:5:6::10"))
    clock.advance(301)
    assert client.ask(client_address="192.0.2.99", instance="m1").startswith("PREPEND ")
    assert client.ask(client_address="2001:db8:5:6:1::77", instance="m2").startswith("PREPEND ")
    assert deferred(client.ask(client_address="192.0.3.10"))
    assert deferred(client.ask(client_address="2001:db8:5:7::10"))


def test_auto_whitelist_after_n_passes(make_engine: EngineFactory, clock: Clock) -> None:
    running = Running(make_engine(background=True, auto_whitelist_after=3))
    c = Client(running.port)
    try:
        for n in range(3):
            sender = f"sender{'abc'[n]}@example.org"
            assert deferred(c.ask(sender=sender, instance=f"m{n}"))
            clock.advance(301)
            assert c.ask(sender=sender, instance=f"m{n}").startswith("PREPEND ")
            clock.advance(3600)
        assert c.ask(sender="newcomer@example.net", client_address="192.0.2.200") == "DUNNO"
    finally:
        c.close()
        running.stop()


@pytest.mark.parametrize(
    ("kind", "value", "attrs"),
    [
        ("client", "198.51.100.7", {"client_address": "198.51.100.7"}),
        ("client", "198.51.100.0/24", {"client_address": "198.51.100.8"}),
        ("client", "partner.example", {"client_name": "mx1.partner.example"}),
        ("sender", "partner.example", {"sender": "billing@partner.example"}),
        ("recipient", "info@monsite.be", {"recipient": "info@monsite.be"}),
    ],
)
def test_every_whitelist_kind(
    policy: Running, client: Client, provider: Actor, kind: str, value: str, attrs: dict
) -> None:
    assert deferred(client.ask(**attrs))
    services.add_whitelist(provider, kind, value)
    policy.engine.reload()
    assert client.ask(**attrs) == "DUNNO"


def test_unconfirmed_reverse_name_is_not_trusted(client: Client) -> None:
    """Postfix says client_name=unknown when the reverse name does not resolve back."""
    action = client.ask(client_name="unknown", reverse_client_name="mail-x.google.com")
    assert deferred(action)
    assert client.ask(client_name="mail-x.google.com", sender="b@gmail.com") == "DUNNO"


def test_domain_and_mailbox_opt_outs(
    policy: Running, client: Client, monsite: Customer, autre: Customer
) -> None:
    box = create_mailbox(
        monsite.actor, monsite.domain, password=STRONG, addresses=["info@monsite.be"]
    ).mailbox
    services.set_mailbox_greylisting(monsite.actor, "monsite.be", box.login, enabled=False)
    services.set_domain_greylisting(autre.actor, "autresite.be", enabled=False)
    policy.engine.reload()
    assert client.ask(recipient="info@monsite.be") == "DUNNO"
    assert client.ask(recipient="contact@autresite.be") == "DUNNO"
    assert deferred(client.ask(recipient="monsite@monsite.be"))


def test_expiry_with_an_injected_clock(client: Client, clock: Clock) -> None:
    client.ask()
    clock.advance(301)
    assert client.ask().startswith("PREPEND ")
    clock.advance(35 * 86400 + 1)
    assert deferred(client.ask(instance="a.month.later"))


def test_null_sender_is_greylisted_after_data(client: Client, clock: Clock) -> None:
    assert client.ask(sender="") == "DUNNO"  # RCPT: address-verification probes pass
    data = {"sender": "", "protocol_state": "DATA", "recipient_count": "1"}
    assert deferred(client.ask(**data))
    clock.advance(301)
    assert client.ask(**data).startswith("PREPEND X-Greylist:")
    # A message with a sender was decided at RCPT already.
    assert client.ask(protocol_state="DATA") == "DUNNO"
    assert client.ask(protocol_state="END-OF-MESSAGE", sender="", recipient="") == "DUNNO"


def test_authenticated_clients_are_never_greylisted(client: Client) -> None:
    assert client.ask(sasl_username="monsite0001", sasl_method="PLAIN") == "DUNNO"


def test_trusted_networks_are_never_greylisted(make_engine: EngineFactory) -> None:
    """A Postfix front end asks about its own clients too ([smtp] trusted_networks)."""
    import ipaddress

    trusted = (ipaddress.ip_network("192.0.2.0/24"),)
    running = Running(make_engine(background=True, trusted_networks=trusted))
    try:
        client = Client(running.port)
        assert client.ask(client_address="192.0.2.77") == "DUNNO"
        assert deferred(client.ask(client_address="198.51.100.77"))
        client.close()
    finally:
        running.stop()


def test_one_header_per_message(client: Client, clock: Clock) -> None:
    client.ask(recipient="info@monsite.be")
    client.ask(recipient="contact@monsite.be")
    clock.advance(301)
    assert client.ask(recipient="info@monsite.be").startswith("PREPEND ")
    assert client.ask(recipient="contact@monsite.be") == "DUNNO"  # same instance


def test_state_survives_a_restart(make_engine: EngineFactory, clock: Clock) -> None:
    running = Running(make_engine(background=True))
    c = Client(running.port)
    assert deferred(c.ask())
    c.close()
    running.stop()
    running.engine.close()
    assert Triplet.objects.count() == 1
    clock.advance(301)
    again = Running(make_engine(background=True))
    c = Client(again.port)
    try:
        assert c.ask().startswith("PREPEND ")
    finally:
        c.close()
        again.stop()


# -- bad input ---------------------------------------------------------------------------------
def test_missing_attributes_get_dunno(client: Client) -> None:
    assert client.ask(client_address=None) == "DUNNO"  # type: ignore[arg-type]
    assert client.ask(recipient=None) == "DUNNO"  # type: ignore[arg-type]
    assert client.ask(sender=None) == "DUNNO"  # type: ignore[arg-type]
    assert client.ask(request="other_request") == "DUNNO"
    assert client.ask(request=None) == "DUNNO"  # type: ignore[arg-type]
    assert client.ask(client_address="not-an-ip") == "DUNNO"
    assert deferred(client.ask())  # the connection still works


def test_garbage_lines_are_ignored(client: Client) -> None:
    client.send(b"this is not an attribute\n\x00\xff\xfe binary\n" + request())
    assert deferred(client.answer())
    client.send(b"total garbage\n\n")
    assert client.answer() == "DUNNO"
    client.send(b"\n\n\n")  # empty requests get no answer...
    assert deferred(client.ask(sender="after-blank-lines@example.org"))  # ...and do no harm


def test_crlf_line_ends_and_pipelined_requests(client: Client) -> None:
    client.send(request().replace(b"\n", b"\r\n") + request(sender="x@y.example") * 3)
    answers = [client.answer() for _ in range(4)]
    assert all(deferred(a) for a in answers)


def test_requests_split_across_packets(client: Client) -> None:
    data = request()
    for i in range(0, len(data), 7):
        client.send(data[i : i + 7])
        time.sleep(0.001)
    assert deferred(client.answer())


def test_huge_request_closes_only_that_connection(policy: Running, client: Client) -> None:
    other = Client(policy.port)
    try:
        client.send(b"sender=" + b"a" * (MAX_REQUEST + 10))
        assert client.closed_by_server()
        assert deferred(other.ask())
    finally:
        other.close()


def test_long_values_are_truncated_not_fatal(client: Client) -> None:
    action = client.ask(sender="x" * 5000 + "@example.org", helo_name="h" * 20000)
    assert deferred(action)


def test_client_disconnecting_mid_request(policy: Running) -> None:
    for cut in (10, 200, len(request()) - 1):
        c = Client(policy.port)
        c.send(request()[:cut])
        c.close()
    c = Client(policy.port)
    try:
        assert deferred(c.ask())
    finally:
        c.close()


def test_a_stalled_client_blocks_nobody(policy: Running) -> None:
    stalled = Client(policy.port)
    stalled.send(request()[:100])  # and never finishes
    others = [Client(policy.port) for _ in range(5)]
    try:
        for n, c in enumerate(others):
            assert deferred(c.ask(sender=f"s{n}@example.org"))
    finally:
        for c in [stalled, *others]:
            c.close()


def test_a_retry_from_another_server_of_the_senders_spf_record_passes(
    make_engine: EngineFactory, clock: Clock, nsd: PrivateNSD
) -> None:
    """Postfix edge: the policy service knows the sender's servers as our port 25 does
    (example.org's SPF authorises both addresses; a third one is a stranger)."""
    nsd.zone("example.org", [nsd.txt("@", "v=spf1 ip4:198.51.100.10 ip4:203.0.113.20 -all")])
    nsd.start()
    running = Running(make_engine(background=True, auto_whitelist_after=0))
    client = Client(running.port)
    try:
        assert deferred(client.ask(client_address="198.51.100.10"))
        clock.advance(301)
        retry = client.ask(client_address="203.0.113.20", instance="retry")
        assert retry.startswith("PREPEND X-Greylist: delayed"), retry
        # SPF-authorised mail of a domain that passed once: no greylisting, new recipient.
        assert client.ask(client_address="198.51.100.10", recipient="compta@monsite.be") == "DUNNO"
        # Not in the record: greylisted as before.
        assert deferred(client.ask(client_address="192.0.2.99", recipient="compta@monsite.be"))
    finally:
        client.close()
        running.stop()
