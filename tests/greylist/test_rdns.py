"""Host-name whitelists trust only forward-confirmed reverse DNS, checked against a
small DNS server of the test's own on the loopback interface."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import dns.asyncresolver
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from courriel.greylist import engine as engine_module
from courriel.greylist.engine import Engine, check
from courriel.greylist.rdns import ConfirmedNames
from courriel.greylist.services import add_whitelist
from tests.greylist.conftest import Clock, settings

RECORDS = {
    ("25.2.0.192.in-addr.arpa.", "PTR"): ["mx1.partner.example."],
    ("mx1.partner.example.", "A"): ["192.0.2.25"],
    # a PTR that anyone could publish: the name does not resolve back
    ("26.2.0.192.in-addr.arpa.", "PTR"): ["mx2.partner.example."],
    ("mx2.partner.example.", "A"): ["203.0.113.1"],
    (
        "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
        "PTR",
    ): ["mx6.partner.example."],
    ("mx6.partner.example.", "AAAA"): ["2001:db8:1:2::25"],
}


class TinyDNS:
    """Answers A, AAAA and PTR questions from RECORDS over UDP."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.questions: list[str] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            rdtype = dns.rdatatype.to_text(question.rdtype)
            self.questions.append(f"{question.name} {rdtype}")
            values = RECORDS.get((question.name.to_text(), rdtype))
            if values:
                response.answer.append(
                    dns.rrset.from_text(question.name, 300, "IN", rdtype, *values)
                )
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), peer)

    def resolver(self) -> dns.asyncresolver.Resolver:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        return resolver


@pytest.fixture
def tiny_dns() -> Iterator[TinyDNS]:
    server = TinyDNS()
    yield server
    server.sock.close()


def names(server: TinyDNS) -> ConfirmedNames:
    return ConfirmedNames(2.0, server.resolver(), only_global=False)


def test_forward_confirmed_names(tiny_dns: TinyDNS) -> None:
    resolver = names(tiny_dns)

    async def run() -> list[str | None]:
        return [
            await resolver.name("192.0.2.25"),
            await resolver.name("192.0.2.26"),
            await resolver.name("192.0.2.27"),
            await resolver.name("2001:db8:1:2::25"),
            await resolver.name("not-an-ip"),
        ]

    assert asyncio.run(run()) == [
        "mx1.partner.example",
        None,  # PTR says partner, but the name points elsewhere
        None,  # no PTR at all
        "mx6.partner.example",
        None,
    ]


def test_answers_are_cached(tiny_dns: TinyDNS) -> None:
    resolver = names(tiny_dns)

    async def run() -> None:
        for _ in range(3):
            assert await resolver.name("192.0.2.25") == "mx1.partner.example"

    asyncio.run(run())
    assert len(tiny_dns.questions) == 2  # one PTR, one A


def test_local_addresses_are_never_looked_up(tiny_dns: TinyDNS) -> None:
    resolver = ConfirmedNames(2.0, tiny_dns.resolver())  # only global addresses
    for address in ("127.0.0.1", "10.1.2.3", "192.168.1.1", "::1", "192.0.2.25"):
        assert asyncio.run(resolver.name(address)) is None
    assert tiny_dns.questions == []


@pytest.mark.django_db(transaction=True)
def test_check_looks_names_up_when_the_caller_has_none(tiny_dns: TinyDNS, clock: Clock) -> None:
    """The SMTP server calls `check(client_name=None)`: the engine confirms the name."""
    from courriel.accounts.permissions import Actor

    add_whitelist(Actor.system("test"), "client", "partner.example")
    engine = Engine(settings(), clock=clock, names=names(tiny_dns))
    engine.start()
    previous = engine_module.set_engine(engine)
    try:

        async def run() -> list[str]:
            verdicts = [
                await check(client_ip=ip, client_name=None, sender="a@b.example", recipient=r)
                for ip, r in (
                    ("192.0.2.25", "info@monsite.be"),
                    ("192.0.2.26", "info@monsite.be"),
                    ("192.0.2.25", "x@monsite.be"),
                )
            ]
            await engine.aclose()
            return [v.action for v in verdicts]

        assert asyncio.run(run()) == ["pass", "defer", "pass"]
    finally:
        engine_module.set_engine(previous)
        engine.close()
