"""Greylisting that knows the sender's servers: a retry from another address that the
sender domain's SPF record authorises is the same sender (big senders retry from
another machine of their farm), and a domain whose SPF-authorised mail passed
greylisting once is not greylisted again. Without SPF, nothing changes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.greylist.conftest import Clock, EngineFactory, ask
from tests.inbound.conftest import (
    EXAMPLE_IP,
    EXAMPLE_OTHER_IP,
    World,
    inbound_world,
    letter,
)

pytestmark = pytest.mark.django_db


def test_a_retry_from_another_spf_authorised_server_is_the_same_sender(
    make_engine: EngineFactory, clock: Clock
) -> None:
    engine = make_engine(auto_whitelist_after=0)
    assert ask(engine, ip="198.51.100.10", spf_domain="example.org").deferred
    clock.advance(301)
    # Another network altogether, but example.org's SPF authorises it: the same sender.
    retry = ask(engine, ip="203.0.113.20", spf_domain="example.org")
    assert retry.action == "pass" and retry.header is not None
    # Without an SPF pass the same retry would be a new triplet.
    assert ask(engine, ip="203.0.113.20", recipient="compta@monsite.be").deferred


def test_spf_authorised_mail_from_a_domain_that_passed_before_skips_greylisting(
    make_engine: EngineFactory, clock: Clock
) -> None:
    engine = make_engine(auto_whitelist_after=0)
    assert ask(engine, ip="198.51.100.10", spf_domain="example.org").deferred
    clock.advance(301)
    assert ask(engine, ip="198.51.100.10", spf_domain="example.org").action == "pass"
    fresh = ask(
        engine,
        ip="203.0.113.99",
        sender="bob@example.org",
        recipient="compta@monsite.be",
        spf_domain="example.org",
    )
    assert fresh.action == "pass" and "passed greylisting before" in fresh.text
    # Another domain that never passed is greylisted as usual.
    assert ask(
        engine, ip="203.0.113.99", sender="eve@other.example", spf_domain="other.example"
    ).deferred


def test_smtp_retry_from_another_server_of_the_senders_farm_is_accepted(tmp_path: Path) -> None:
    # One SMTP process: what a pass taught one process reaches the others through the
    # database within [greylist] reload_interval, like auto-whitelisted networks.
    env = {
        "COURRIEL_GREYLIST_ENABLED": "true",
        "COURRIEL_GREYLIST_DELAY": "2s",
        "COURRIEL_SMTP_WORKERS": "1",
    }
    with inbound_world(tmp_path, env) as world:
        first = send(world, EXAMPLE_IP, "compta@monsite.be", "farm one")
        assert first[0] == 451 and b"Greylisting in effect" in first[1]
        time.sleep(2.2)  # the greylisting delay itself, not a wait for another process
        # The retry comes from another address of example.org's SPF record: accepted.
        assert send(world, EXAMPLE_OTHER_IP, "compta@monsite.be", "farm one") == (250, b"")
        world.platform.wait_message("monsite0002", b"farm one")
        # A new recipient, SPF-authorised again: no greylisting at all.
        assert send(world, EXAMPLE_OTHER_IP, "info@monsite.be", "farm two") == (250, b"")


def send(world: World, source: str, recipient: str, subject: str) -> tuple[int, bytes]:
    with world.smtp(source) as client:
        client.ehlo("mail.example.org")
        client.mail("alice@example.org")
        code, text = client.rcpt(recipient)
        if code != 250:
            return code, text
        client.data(letter("Alice <alice@example.org>", recipient, subject))
        return 250, b""
