"""A real Postfix (Debian's package) delegating to our policy service: its first
delivery attempt is deferred by greylisting, its queue retry after the delay is
delivered, with the X-Greylist header, and the next message goes through at once.

One private Postfix instance plays both sides: mail injected on one smtpd port is
queued and relayed (transport map) to a second smtpd port, the edge that calls
`check_policy_service`; what the edge accepts goes to the test's own SMTP sink.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from aiosmtpd.controller import Controller

from tests.fixtures.net import free_port
from tests.fixtures.postfix import PrivatePostfix, available
from tests.fixtures.processes import Courriel, Served, start_serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not available(), reason="Debian's postfix is not installed"),
]
DELAY = 3


class Sink:
    """The final destination: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.received = threading.Event()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(envelope.content)  # type: ignore[attr-defined]
        self.received.set()
        return "250 OK: kept"


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="sink.test")
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def policy_service(courriel: Courriel) -> Iterator[Served]:
    # The sending Postfix is on loopback, which [smtp] trusted_networks exempts by
    # default: here it plays an outside server.
    served = start_serve(
        courriel,
        {
            "COURRIEL_GREYLIST_DELAY": f"{DELAY}s",
            "COURRIEL_WEB_ENABLED": "false",
            "COURRIEL_SMTP_TRUSTED_NETWORKS": "192.0.2.0/24",
        },
    )
    yield served
    served.stop()


@pytest.fixture
def postfix(policy_service: Served, sink: tuple[Sink, int]) -> Iterator[tuple[PrivatePostfix, int]]:
    inject, edge = free_port(), free_port()
    policy = f"check_policy_service inet:127.0.0.1:{policy_service.ports['policy']}"
    instance = PrivatePostfix(
        main={
            "relay_domains": "monsite.be",
            "transport_maps": f"inline:{{monsite.be=smtp:[127.0.0.1]:{edge}}}",
            "greylist_recipient_restrictions": f"reject_unauth_destination, {policy}, permit",
            "greylist_data_restrictions": f"{policy}, permit",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
        },
        services=[
            f"127.0.0.1:{inject} inet n - n - - smtpd",
            f"127.0.0.1:{edge} inet n - n - - smtpd -o myhostname=edge.test"
            " -o smtpd_recipient_restrictions=$greylist_recipient_restrictions"
            " -o smtpd_data_restrictions=$greylist_data_restrictions"
            f" -o content_filter=smtp:[127.0.0.1]:{sink[1]}",
        ],
    )
    try:
        instance.start()
        yield instance, inject
    finally:
        instance.stop()
        instance.cleanup()


def send(port: int, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "alice@example.org"
    message["To"] = "info@monsite.be"
    message["Subject"] = subject
    message.set_content("Bonjour!\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.send_message(message, "alice@example.org", ["info@monsite.be"])


def test_postfix_first_attempt_deferred_retry_delivered(
    postfix: tuple[PrivatePostfix, int], sink: tuple[Sink, int]
) -> None:
    instance, inject = postfix
    messages, _ = sink
    send(inject, "first message")
    started = time.monotonic()
    log = instance.wait_for_log("status=deferred")
    assert "450 4.7.1 <info@monsite.be>: Recipient address rejected: Greylisting in effect" in log
    assert "please retry in 3 seconds" in log
    assert messages.messages == []
    assert "info@monsite.be" in instance.queued()

    time.sleep(max(0.0, DELAY + 0.5 - (time.monotonic() - started)))
    instance.flush_queue()
    assert messages.received.wait(30), instance.log_text()
    delivered = BytesParser().parsebytes(messages.messages[0])
    assert delivered["Subject"] == "first message"
    assert delivered["X-Greylist"].startswith("delayed ")
    assert " seconds by Courriel-" in delivered["X-Greylist"]

    # Postfix's own retries before the delay were deferred again (1 s backoff here).
    deferrals = instance.log_text().count("status=deferred")
    assert deferrals >= 1
    # The triplet is trusted: the next message is delivered on its first attempt.
    send(inject, "second message")
    instance.wait_for_log("status=sent", count=4)  # to the edge, then to the sink
    deadline = time.monotonic() + 30
    while len(messages.messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert instance.log_text().count("status=deferred") == deferrals
    second = BytesParser().parsebytes(messages.messages[1])
    assert second["Subject"] == "second message" and second["X-Greylist"] is None
