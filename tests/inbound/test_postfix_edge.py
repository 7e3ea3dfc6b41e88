"""Production mode: a real Postfix is the edge and hands mail to our LMTP with XFORWARD.
The checks run once, on our side, for the client that connected to Postfix — not for
Postfix itself (127.0.0.1, which example.org's SPF does not authorise)."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest

from tests.fixtures.net import free_port
from tests.fixtures.postfix import PrivatePostfix, available
from tests.inbound.conftest import EXAMPLE_IP, STRANGER_IP, World, letter

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not available(), reason="Debian's postfix is not installed"),
]


@pytest.fixture(params=["a connection per message", "connections kept open"])
def edge(world: World, request: pytest.FixtureRequest) -> Iterator[tuple[PrivatePostfix, int]]:
    """Postfix in front of our LMTP; with its LMTP connections kept open between
    messages too, as `courriel edge postfix` configures it."""
    port = free_port()
    lmtp = world.platform.port("lmtp")
    cached = {"lmtp_connection_cache_destinations": "static:all"}
    instance = PrivatePostfix(
        main={
            "relay_domains": "monsite.be",
            "transport_maps": f"inline:{{monsite.be=lmtp:inet:127.0.0.1:{lmtp}}}",
            "lmtp_send_xforward_command": "yes",
            "smtpd_peername_lookup": "no",  # no reverse DNS through the system resolver
            "myhostname": "edge.test",
            **(cached if request.param == "connections kept open" else {}),
        },
        services=[f"127.0.0.1:{port} inet n - n - - smtpd", "lmtp unix - - n - - lmtp"],
    )
    try:
        instance.start()
        yield instance, port
    finally:
        instance.stop()
        instance.cleanup()


def send_through(port: int, source: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(source, 0)) as client:
        client.ehlo("mail.example.org")
        client.sendmail(
            "alice@example.org",
            ["compta@monsite.be"],
            letter("Alice <alice@example.org>", "compta@monsite.be", subject),
        )


def test_checks_use_the_original_client_address_passed_with_xforward(
    world: World, edge: tuple[PrivatePostfix, int]
) -> None:
    instance, port = edge
    send_through(port, EXAMPLE_IP, "through the postfix edge")
    copy = world.platform.wait_message("monsite0002", b"through the postfix edge", timeout=30)
    header = copy.split(b"\r\nReceived:", 1)[0]
    # SPF authorises 127.0.0.2 (the client of Postfix), not 127.0.0.1 (Postfix).
    assert b"spf=pass" in header and b"smtp.mailfrom=example.org" in header
    assert b"dmarc=pass" in header

    # The same message from an address nobody authorised is refused by our LMTP, and
    # Postfix (which had accepted it) returns it to the sender.
    send_through(port, STRANGER_IP, "stranger through the edge")
    log = instance.wait_for_log("status=bounced")
    assert "550 5.7.1 Message refused: it fails the DMARC policy of example.org" in log
    assert not [m for m in world.platform.messages("monsite0002") if b"stranger through" in m]

    # Each message is judged on its own client, also when Postfix hands it over a
    # connection that carried another client's message before.
    send_through(port, EXAMPLE_IP, "authorised again")
    again = world.platform.wait_message("monsite0002", b"authorised again", timeout=30)
    assert b"spf=pass" in again.split(b"\r\nReceived:", 1)[0]
    if "lmtp_connection_cache_destinations" in (instance.config / "main.cf").read_text():
        instance.wait_for_log("conn_use=")  # the same connection, used again


def test_xforward_is_offered_and_accepted_only_for_trusted_clients(world: World) -> None:
    with smtplib.LMTP("127.0.0.1", world.platform.port("lmtp")) as client:
        code, text = client.ehlo("edge.test")
        assert code == 250 and b"XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT" in text
        assert client.docmd("XFORWARD ADDR=not-an-address")[0] == 501
        assert client.docmd("XFORWARD COLOUR=blue")[0] == 501
        assert client.docmd("XFORWARD ADDR=IPV6:2001:db8::1 HELO=mail.example.org")[0] == 250
        client.mail("alice@example.org")
        assert client.docmd("XFORWARD ADDR=192.0.2.1")[0] == 503  # not inside a transaction
    # A client outside [lmtp] xforward_hosts is not told of it and may not use it.
    with smtplib.LMTP(
        "127.0.0.1", world.platform.port("lmtp"), source_address=(STRANGER_IP, 0)
    ) as c:
        code, text = c.ehlo("stranger.test")
        assert b"XFORWARD" not in text
        assert c.docmd("XFORWARD ADDR=127.0.0.2")[0] == 550
