"""When the DNS cannot answer, the checks cannot be made: the sender is told to try
again later (451 4.4.3), never refused for good, and nothing is lost."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from tests.inbound.conftest import EXAMPLE_IP, inbound_world, letter, signed


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
