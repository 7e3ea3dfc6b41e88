"""When the DNS cannot answer, the checks cannot be made: the sender is told to try
again later (451 4.4.3), never refused for good, and nothing is lost."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from tests.inbound.conftest import EXAMPLE_IP, QUARANTINE_IP, inbound_world, letter, signed


def test_dns_server_stopped_gives_a_temporary_error_and_the_retry_is_delivered(
    tmp_path: Path,
) -> None:
    with inbound_world(tmp_path) as world:
        world.dns.stop()
        message = signed(
            letter("alice@example.org", "compta@monsite.be", "while the DNS is down"),
            world.example_key,
        )
        with pytest.raises(smtplib.SMTPDataError) as deferred:
            world.send(EXAMPLE_IP, "alice@example.org", "compta@monsite.be", message)
        assert deferred.value.smtp_code == 451
        assert deferred.value.smtp_error.startswith(b"4.4.3 ")
        assert world.platform.messages("monsite0002") == []
        assert world.platform.messages("monsite0002", folder="Junk") == []

        world.dns.start()  # the sender's retry, once the DNS answers again
        world.send(EXAMPLE_IP, "alice@example.org", "compta@monsite.be", message)
        copy = world.platform.wait_message("monsite0002", b"while the DNS is down")
        assert b"dmarc=pass" in copy


def test_with_the_dns_down_cached_senders_pass_and_the_others_wait(tmp_path: Path) -> None:
    """Once a sender's records are cached, its mail is checked from the cache (on the
    server's event loop) and still delivered while the DNS is down; a sender never
    seen before gets 451 4.4.3 and loses nothing. (One SMTP process: each has its own
    cache, and the kernel would spread the connections over them.)"""
    with inbound_world(tmp_path, {"COURRIEL_SMTP_WORKERS": "1"}) as world:
        first = signed(
            letter("alice@example.org", "compta@monsite.be", "premier"), world.example_key
        )
        world.send(EXAMPLE_IP, "alice@example.org", "compta@monsite.be", first)
        heard = world.platform.wait_message("monsite0002", b"premier")
        world.dns.stop()

        again = signed(
            letter("alice@example.org", "compta@monsite.be", "second"), world.example_key
        )
        world.send(EXAMPLE_IP, "alice@example.org", "compta@monsite.be", again)
        cached = world.platform.wait_message("monsite0002", b"second")
        for verdict in (b"spf=pass", b"dkim=pass", b"dmarc=pass"):
            assert verdict in cached and verdict in heard

        unknown = letter("bob@quarantine.example", "compta@monsite.be", "jamais vu")
        with pytest.raises(smtplib.SMTPDataError) as deferred:
            world.send(QUARANTINE_IP, "bob@quarantine.example", "compta@monsite.be", unknown)
        assert deferred.value.smtp_code == 451
        assert deferred.value.smtp_error.startswith(b"4.4.3 ")
        world.dns.start()
        world.send(QUARANTINE_IP, "bob@quarantine.example", "compta@monsite.be", unknown)
        retried = world.platform.wait_message("monsite0002", b"jamais vu")
        assert b"spf=pass" in retried
        assert len(world.platform.messages("monsite0002")) == 3
        assert world.platform.messages("monsite0002", folder="Junk") == []
