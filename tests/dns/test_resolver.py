"""The platform's one resolver, against a real authoritative server of the test's own."""

from __future__ import annotations

import asyncio
import time

import pytest

from courriel.dns import resolver
from courriel.dns.resolver import DNSTemporaryError, parse_nameserver
from courriel.errors import ConfigError
from tests.fixtures.nsd import PrivateNSD

LONG = "v=DKIM1; k=rsa; p=" + "A" * 400  # longer than one 255-byte TXT string


def example_zone(nsd: PrivateNSD, spf: str = "v=spf1 ip4:127.0.0.1 -all", ttl: int = 300) -> None:
    nsd.zone(
        "example.org",
        [
            "@ MX 20 mx2",
            "@ MX 10 mx1",
            "mx1 A 127.0.0.1",
            nsd.txt("@", spf, ttl),
            nsd.txt("s1._domainkey", LONG),
            "nomx A 127.0.0.1",
        ],
    )
    nsd.zone("nullmx.example", ["@ MX 0 ."])


def test_txt_records_are_joined_and_mx_sorted(nsd: PrivateNSD) -> None:
    example_zone(nsd)
    nsd.start()
    assert resolver.txt("example.org") == ["v=spf1 ip4:127.0.0.1 -all"]
    assert resolver.txt("s1._domainkey.example.org") == [LONG]
    assert resolver.mx("example.org").hosts == ["mx1.example.org", "mx2.example.org"]


def test_missing_names_and_records_are_empty_answers(nsd: PrivateNSD) -> None:
    example_zone(nsd)
    nsd.start()
    assert resolver.txt("nothing-here.example.org") == []
    assert resolver.query("mx1.example.org", "TXT") == []
    assert resolver.mx("nomx.example.org").hosts == ["nomx.example.org"]  # implicit MX
    assert not resolver.mx("gone.example.org").exists
    assert resolver.mx("nullmx.example").null_mx
    assert resolver.txt("a..b.example.org") == []  # not a name DNS can hold


def test_a_dead_server_is_a_temporary_error_within_the_timeout(
    nsd: PrivateNSD, monkeypatch: pytest.MonkeyPatch
) -> None:
    from courriel.config import get_config

    example_zone(nsd)
    nsd.start()
    nsd.stop()
    monkeypatch.setitem(get_config().dns, "timeout", "2s")
    started = time.monotonic()
    with pytest.raises(DNSTemporaryError, match="example.org"):
        resolver.txt("example.org")
    with pytest.raises(DNSTemporaryError):
        resolver.mx("example.org")
    with pytest.raises(DNSTemporaryError):
        asyncio.run(resolver.atxt("example.org"))
    assert time.monotonic() - started < 10


def test_refused_outside_our_zones_is_temporary_not_missing(nsd: PrivateNSD) -> None:
    """A server that will not answer is no proof that a name does not exist."""
    example_zone(nsd)
    nsd.start()
    with pytest.raises(DNSTemporaryError):
        resolver.txt("gmail.com")


def test_answers_are_cached_for_their_ttl(nsd: PrivateNSD) -> None:
    example_zone(nsd, "v=spf1 -all", ttl=300)
    nsd.zone("short.example", [nsd.txt("@", "first", ttl=1)])
    nsd.start()
    assert resolver.txt("example.org") == ["v=spf1 -all"]
    assert resolver.txt("short.example") == ["first"]
    example_zone(nsd, "v=spf1 +all", ttl=300)
    nsd.zone("short.example", [nsd.txt("@", "second", ttl=1)])
    nsd.reload()
    deadline = time.monotonic() + 20
    while resolver.txt("short.example") != ["second"]:
        assert time.monotonic() < deadline, "a 1-second TTL was kept for 20 s"
        time.sleep(0.2)
    assert resolver.txt("example.org") == ["v=spf1 -all"]  # still within its 300 s


def test_async_lookups_share_the_settings(nsd: PrivateNSD) -> None:
    example_zone(nsd)
    nsd.start()
    assert asyncio.run(resolver.atxt("example.org")) == ["v=spf1 ip4:127.0.0.1 -all"]


@pytest.mark.parametrize(
    ("text", "address", "port"),
    [
        ("192.0.2.53", "192.0.2.53", 53),
        ("127.0.0.1:5353", "127.0.0.1", 5353),
        ("::1", "::1", 53),
        ("[::1]:5300", "::1", 5300),
    ],
)
def test_nameserver_forms(text: str, address: str, port: int) -> None:
    server = parse_nameserver(text)
    assert (server.address, server.port) == (address, port)


@pytest.mark.parametrize("text", ["dns.example", "127.0.0.1:0", "127.0.0.1:99999", "[::1"])
def test_a_bad_nameserver_is_a_configuration_error(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from courriel.config import get_config

    monkeypatch.setitem(get_config().dns, "nameservers", [text])
    with pytest.raises(ConfigError, match=r"\[dns\] nameservers"):
        resolver.sync_resolver()
