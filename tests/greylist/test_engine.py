"""Chapter 13 of the manual, decided by the engine with an injected clock: first sight
deferred, retry after the delay accepted and trusted, everything RFC 6647 and
postgrey taught us (subnets, auto-whitelist, whitelists, opt-outs, expiry)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connections

from courriel.accounts.permissions import Actor
from courriel.accounts.services.domains import add_domain_alias
from courriel.accounts.services.mailboxes import create_mailbox
from courriel.delivery.smtp import hooks
from courriel.greylist import services
from courriel.greylist.engine import set_engine
from courriel.greylist.models import AutoWhitelist, DailyCount, Triplet
from courriel.greylist.store import Store
from tests.fixtures.accounts import STRONG, Customer
from tests.greylist.conftest import HOST, Clock, EngineFactory, ask

pytestmark = pytest.mark.django_db
DAY = 86400


def test_first_sight_deferred_retry_accepted_then_trusted(
    make_engine: EngineFactory, clock: Clock
) -> None:
    engine = make_engine()
    first = ask(engine)
    assert first.action == "defer" and first.header is None
    assert first.text == (
        "Greylisting in effect, please retry in 5 minutes (after 2027-01-15 08:05:00 UTC)"
    )
    clock.advance(120)
    early = ask(engine)
    assert early.action == "defer"
    assert early.text == (
        "Greylisting in effect, please retry in 3 minutes (after 2027-01-15 08:05:00 UTC)"
    )
    clock.advance(200)
    passed = ask(engine)
    assert passed.action == "pass"
    assert passed.header is not None
    assert passed.header.startswith(
        f"X-Greylist: delayed 320 seconds by Courriel-0.1.0 at {HOST}; "
    )
    clock.advance(5)
    again = ask(engine)  # the next message of the same triplet: at once, no header
    assert again.action == "pass" and again.header is None
    assert again.text.startswith("known triplet")


def test_retry_from_a_neighbour_address_of_the_same_farm(
    make_engine: EngineFactory, clock: Clock
) -> None:
    engine = make_engine()
    assert ask(engine, ip="192.0.2.10").deferred
    clock.advance(301)
    assert ask(engine, ip="192.0.2.200").action == "pass"  # same /24
    assert ask(engine, ip="192.0.2.77").action == "pass"
    assert ask(engine, ip="192.0.3.10").deferred  # another network


def test_ipv6_clients_are_grouped_by_64(make_engine: EngineFactory, clock: Clock) -> None:
    engine = make_engine()
    assert ask(engine, ip="2001:db8:1:2::25").deferred
    clock.advance(301)
    assert ask(engine, ip="2001:db8:1:2:ffff::1").action == "pass"
    assert ask(engine, ip="2001:db8:1:3::25").deferred


def test_prefix_lengths_are_configurable(make_engine: EngineFactory, clock: Clock) -> None:
    engine = make_engine(ipv4_prefix=32)
    assert ask(engine, ip="192.0.2.10").deferred
    clock.advance(301)
    assert ask(engine, ip="192.0.2.11").deferred  # each address on its own


def test_sender_tags_and_verp_numbers_do_not_make_new_triplets(
    make_engine: EngineFactory, clock: Clock
) -> None:
    engine = make_engine()
    assert ask(engine, sender="prvs=1234567890=bounce-1001@list.example").deferred
    clock.advance(301)
    assert ask(engine, sender="prvs=0987654321=bounce-1002@list.example").action == "pass"
    assert ask(engine, sender="other@list.example").deferred
    assert ask(engine, recipient="contact@monsite.be").deferred


def test_retry_after_the_retry_window_starts_afresh(
    make_engine: EngineFactory, clock: Clock
) -> None:
    engine = make_engine()
    assert ask(engine).deferred
    clock.advance(2 * DAY + 1)
    late = ask(engine)
    assert late.deferred and "retry in 5 minutes" in late.text
    clock.advance(301)
    assert ask(engine).action == "pass"


def test_trusted_triplet_expires_after_35_days_unseen(
    make_engine: EngineFactory, clock: Clock
) -> None:
    engine = make_engine()
    ask(engine)
    clock.advance(301)
    assert ask(engine).action == "pass"
    clock.advance(34 * DAY)
    assert ask(engine).action == "pass"  # seen again: another 35 days
    clock.advance(35 * DAY - 10)
    assert ask(engine).action == "pass"
    clock.advance(35 * DAY + 1)
    assert ask(engine).deferred  # unseen too long: greylisted afresh


def test_expiry_and_windows_are_configurable(make_engine: EngineFactory, clock: Clock) -> None:
    engine = make_engine(delay=60, retry_window=3600, expiry=7200)
    ask(engine)
    clock.advance(61)
    assert ask(engine).action == "pass"
    clock.advance(7201)
    assert ask(engine).deferred


def test_auto_whitelist_after_five_passes(make_engine: EngineFactory, clock: Clock) -> None:
    engine = make_engine(auto_whitelist_interval=3600)
    for n in range(5):
        sender = f"user{'abcde'[n]}@example.org"
        assert ask(engine, sender=sender).deferred
        clock.advance(301)
        assert ask(engine, sender=sender, ip=f"192.0.2.{n + 1}").action == "pass"
        if n < 4:
            # not yet: a new sender from that network is still greylisted
            assert ask(engine, sender=f"probe{n}@example.org", ip="192.0.2.99").deferred
        clock.advance(3600)
    verdict = ask(engine, sender="brand-new@example.net", ip="192.0.2.250")
    assert verdict.action == "pass"
    assert verdict.text == "client network 192.0.2.0/24 is auto-whitelisted"
    assert ask(engine, sender="brand-new@example.net", ip="192.0.3.1").deferred
    engine.flush()
    assert AutoWhitelist.objects.get(network="192.0.2.0/24").passes == 5


def test_one_burst_of_retries_counts_once(make_engine: EngineFactory, clock: Clock) -> None:
    engine = make_engine()
    senders = [f"user{c}@example.org" for c in "abcdef"]
    for sender in senders:
        ask(engine, sender=sender)
    clock.advance(301)
    for sender in senders:  # six triplets pass within the same hour
        assert ask(engine, sender=sender).action == "pass"
    assert ask(engine, sender="new@example.org").deferred


def test_auto_whitelist_can_be_turned_off(make_engine: EngineFactory, clock: Clock) -> None:
    engine = make_engine(auto_whitelist_after=0)
    for n in range(7):
        ask(engine, sender=f"u{n}@example.org")
        clock.advance(301)
        ask(engine, sender=f"u{n}@example.org")
        clock.advance(3601)
    assert ask(engine, sender="new@example.org").deferred


@pytest.mark.parametrize(
    ("kind", "value", "request_"),
    [
        ("client", "198.51.100.7", {"ip": "198.51.100.7"}),
        ("client", "198.51.100.0/24", {"ip": "198.51.100.200"}),
        ("client", "2001:db8:77::/48", {"ip": "2001:db8:77:1::9"}),
        ("client", "mail.partner.example", {"name": "out3.mail.partner.example"}),
        ("client", "/^mx[0-9]+\\.isp\\.example$/", {"name": "mx42.isp.example"}),
        ("sender", "partner.example", {"sender": "billing@partner.example"}),
        ("sender", "ceo@partner.example", {"sender": "CEO@Partner.example"}),
        ("recipient", "info@monsite.be", {"recipient": "info+x@monsite.be"}),
        ("recipient", "sales@", {"recipient": "sales@anything.example"}),
        ("recipient", "monsite.be", {"recipient": "contact@monsite.be"}),
    ],
)
def test_every_whitelist_kind(
    make_engine: EngineFactory, provider: Actor, kind: str, value: str, request_: dict
) -> None:
    engine = make_engine()
    assert ask(engine, **request_).deferred
    services.add_whitelist(provider, kind, value, comment="test")
    engine.reload()
    verdict = ask(engine, **request_)
    assert verdict.action == "pass" and "whitelist entry" in verdict.text
    services.remove_whitelist(provider, kind, value)
    engine.reload()
    assert ask(engine, **request_).deferred


def test_host_names_only_count_when_given(make_engine: EngineFactory) -> None:
    """The shipped list trusts google.com, but only a confirmed name (Postfix's
    client_name) says a client is Google's."""
    engine = make_engine()
    assert ask(engine, name="mail-ed1-f41.google.com").action == "pass"
    assert ask(engine, name="unknown", sender="x@gmail.com").deferred
    assert ask(engine, name=None, sender="y@gmail.com").deferred  # check_sync: no DNS


def test_shipped_list_can_be_turned_off(make_engine: EngineFactory) -> None:
    engine = make_engine(default_whitelist=False)
    assert ask(engine, name="mail-ed1-f41.google.com").deferred
    assert ask(engine, recipient="postmaster@monsite.be").deferred


def test_domain_owner_turns_greylisting_off_for_the_domain(
    make_engine: EngineFactory, monsite: Customer, autre: Customer
) -> None:
    engine = make_engine()
    add_domain_alias(monsite.actor, monsite.domain, "monsite.eu")
    services.set_domain_greylisting(monsite.actor, "monsite.be", enabled=False)
    engine.reload()
    for recipient in ("info@monsite.be", "anyone+tag@monsite.be", "info@monsite.eu"):
        verdict = ask(engine, recipient=recipient)
        assert verdict.action == "pass", recipient
        assert verdict.text == "greylisting is off for monsite.be"
    assert ask(engine, recipient="info@autresite.be").deferred
    services.set_domain_greylisting(monsite.actor, "monsite.be", enabled=True)
    engine.reload()
    assert ask(engine, recipient="info@monsite.be").deferred


def test_owner_turns_greylisting_off_for_one_mailbox(
    make_engine: EngineFactory, monsite: Customer
) -> None:
    engine = make_engine()
    add_domain_alias(monsite.actor, monsite.domain, "monsite.eu")
    box = create_mailbox(
        monsite.actor, monsite.domain, password=STRONG, addresses=["info@monsite.be"]
    ).mailbox
    services.set_mailbox_greylisting(monsite.actor, "monsite.be", box.login, enabled=False)
    engine.reload()
    for recipient in (f"{box.login}@monsite.be", "info@monsite.be", "info+x@monsite.eu"):
        verdict = ask(engine, recipient=recipient)
        assert verdict.action == "pass", recipient
        assert verdict.text == f"greylisting is off for mailbox {box.login}"
    assert ask(engine, recipient="monsite@monsite.be").deferred  # the owner's own mailbox


def test_delay_overridden_per_domain(
    make_engine: EngineFactory, clock: Clock, provider: Actor, monsite: Customer, autre: Customer
) -> None:
    engine = make_engine()
    services.set_domain_greylisting(provider, "monsite.be", delay="1m")
    engine.reload()
    first = ask(engine, recipient="info@monsite.be")
    assert "retry in 60 seconds" in first.text
    ask(engine, recipient="info@autresite.be")
    clock.advance(61)
    assert ask(engine, recipient="info@monsite.be").action == "pass"
    assert ask(engine, recipient="info@autresite.be").deferred


def test_null_sender_is_judged_after_data(make_engine: EngineFactory, clock: Clock) -> None:
    engine = make_engine()
    at_rcpt = ask(engine, sender="")
    assert at_rcpt.action == "pass" and "after DATA" in at_rcpt.text
    assert ask(engine, sender="<>", stage="data").deferred
    clock.advance(301)
    bounce = ask(engine, sender="", stage="data")
    assert bounce.action == "pass" and bounce.header
    assert Triplet.objects.count() == 0  # not yet written: the hot path never writes
    engine.flush()
    assert Triplet.objects.get().sender == "<>"


def test_state_survives_a_restart(make_engine: EngineFactory, clock: Clock) -> None:
    first = make_engine()
    ask(first)
    clock.advance(100)
    ask(first)
    first.close()  # writes what is in memory
    row = Triplet.objects.get()
    assert (row.client_net, row.sender, row.recipient) == (
        "192.0.2.0/24",
        "alice@example.org",
        "info@monsite.be",
    )
    assert row.deferrals == 2 and row.passed_at is None
    clock.advance(201)
    second = make_engine()
    assert ask(second).action == "pass"  # read from the database on a cache miss
    second.flush()
    row.refresh_from_db()
    assert row.passed_at == clock.now and row.passes == 1 and row.deferrals == 2
    counts = DailyCount.objects.get()
    assert (counts.deferred, counts.passed_retry, counts.host) == (2, 1, HOST)


def test_hosting_servers_share_the_store(make_engine: EngineFactory, clock: Clock) -> None:
    server_a, server_b = make_engine(), make_engine()
    assert ask(server_a).deferred
    server_a.flush()
    clock.advance(301)
    assert ask(server_b, ip="192.0.2.11").action == "pass"  # the retry reached server B
    server_b.flush()
    clock.advance(10)
    # Server A still had its own (older) copy: it judges from it and agrees.
    assert ask(server_a).action == "pass"
    server_a.flush()
    row = Triplet.objects.get()
    assert row.first_seen == 1_800_000_000.0 and row.passes == 2 and row.deferrals == 1


@pytest.fixture
def unavailable_alias() -> Iterator[str]:
    """A database that cannot be opened (its directory does not exist)."""
    alias = "greylist_unavailable"
    default = dict(connections.settings["default"])
    configured = connections.configure_settings(
        {
            "default": default,
            alias: {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": "/nonexistent/courriel/greylist.sqlite3",
            },
        }
    )
    connections.settings[alias] = configured[alias]
    yield alias
    connections[alias].close()
    del connections.settings[alias]


def test_store_unavailable_fails_open_by_default(
    make_engine: EngineFactory, unavailable_alias: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(store=Store(unavailable_alias))
    verdict = ask(engine)
    assert verdict.action == "pass"
    assert verdict.text == "greylisting store unavailable: accepted (fail-open)"
    assert "greylist store unavailable" in caplog.text
    assert engine.totals["store_errors"] == 1


def test_store_unavailable_fails_closed_when_configured(
    make_engine: EngineFactory, unavailable_alias: str
) -> None:
    engine = make_engine(store=Store(unavailable_alias), fail_open=False)
    verdict = ask(engine)
    assert verdict.deferred
    assert verdict.text == "Greylisting temporarily unavailable, please retry later"


def test_writes_wait_while_the_store_is_down(
    make_engine: EngineFactory, clock: Clock, unavailable_alias: str
) -> None:
    engine = make_engine()
    ask(engine)
    engine.store.using = unavailable_alias
    assert engine.flush() is False
    assert engine.last_flush_error
    clock.advance(301)
    assert ask(engine).action == "pass"  # memory still knows the triplet
    assert engine.memory_figures()["unwritten_triplets"] == 2
    engine.store.using = "default"
    assert engine.flush() is True
    row = Triplet.objects.get()
    assert row.deferrals == 1 and row.passes == 1 and row.passed_at is not None
    assert engine.memory_figures()["unwritten_triplets"] == 0


def test_purge_forgets_expired_entries(make_engine: EngineFactory, clock: Clock) -> None:
    engine = make_engine(auto_whitelist_after=1)
    ask(engine, sender="never-retries@example.org")
    ask(engine, sender="retries@example.org", ip="198.51.100.1")
    clock.advance(301)
    ask(engine, sender="retries@example.org", ip="198.51.100.1")
    engine.flush()
    assert Triplet.objects.count() == 2
    clock.advance(2 * DAY + 1)
    assert engine.purge() == (1, 0)  # never retried within the window
    assert list(Triplet.objects.values_list("sender", flat=True)) == ["retries@example.org"]
    clock.advance(35 * DAY)
    assert engine.purge() == (1, 1)  # trusted, unseen for 35 days; its network too
    assert not Triplet.objects.exists() and not AutoWhitelist.objects.exists()


def test_memory_is_bounded_and_the_database_holds_the_rest(
    make_engine: EngineFactory, clock: Clock
) -> None:
    engine = make_engine(cache_size=1000)
    for n in range(1500):
        ask(engine, sender=f"user{n}x@example.org")
    engine.flush()
    ask(engine, sender="one-more@example.org")  # makes room now that all is written
    assert engine.memory_figures()["cached_triplets"] <= 1001
    clock.advance(301)
    assert ask(engine, sender="user0x@example.org").action == "pass"  # evicted, from DB


def test_turned_off_passes_everything(make_engine: EngineFactory) -> None:
    engine = make_engine(enabled=False)
    assert ask(engine).text == "greylisting is turned off on this server"
    # ...and says so to the SMTP server, which then does not ask at all.
    previous = set_engine(engine)
    try:
        assert hooks.greylisting_off()
        set_engine(make_engine(enabled=True))
        assert not hooks.greylisting_off()
    finally:
        set_engine(previous)


def test_garbage_client_address_is_passed_and_logged(
    make_engine: EngineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    verdict = ask(make_engine(), ip="not-an-address")
    assert verdict.action == "pass" and "not an IP address" in caplog.text


def test_help_url_names_the_recipient_domain(make_engine: EngineFactory, clock: Clock) -> None:
    engine = make_engine(help_url="https://all2all.org/greylisting?domain={domain}", delay=1)
    assert ask(engine).text == (
        "Greylisting in effect, please retry in 1 second (after 2027-01-15 08:00:01 UTC); "
        "see https://all2all.org/greylisting?domain=monsite.be"
    )
