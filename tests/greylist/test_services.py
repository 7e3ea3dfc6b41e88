"""What the panel, the CLI and the metrics call: the status page's counts, the answer
to "why was my mail delayed, and when will it arrive?", whitelist editing and the
per-domain and per-mailbox switches, with their permissions."""

from __future__ import annotations

import pytest

from courriel.accounts.permissions import Actor
from courriel.accounts.services.mailboxes import create_mailbox
from courriel.audit.models import AuditEntry
from courriel.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from courriel.greylist import services
from courriel.greylist.models import Revision, Triplet, WhitelistEntry
from tests.fixtures.accounts import STRONG, Customer
from tests.greylist.conftest import Clock, EngineFactory, ask

pytestmark = pytest.mark.django_db


def traffic(make_engine: EngineFactory, clock: Clock) -> None:
    """alice's message is waiting; bob's passed after 6 minutes; a spammer never retried."""
    engine = make_engine()
    ask(engine, sender="spam@spam.example", ip="203.0.113.66", recipient="info@monsite.be")
    engine.flush()  # the background writer does it every second
    clock.advance(3 * 86400)
    ask(engine, sender="bob@example.net", ip="198.51.100.20", recipient="contact@monsite.be")
    clock.advance(360)
    ask(engine, sender="bob@example.net", ip="198.51.100.21", recipient="contact@monsite.be")
    ask(engine, sender="alice@example.org", ip="192.0.2.10", recipient="info@monsite.be")
    ask(engine, sender="carol@example.com", ip="192.0.2.30", recipient="info@autresite.be")
    engine.flush()


def test_status_counts(
    make_engine: EngineFactory, clock: Clock, provider: Actor, monsite: Customer
) -> None:
    traffic(make_engine, clock)
    services.set_domain_greylisting(provider, "monsite.be", enabled=False)
    out = services.status(provider, now=clock.now)
    assert out.total.deferred == 4 and out.total.passed_retry == 1
    assert out.today.deferred == 3  # the spam attempt was three days earlier
    assert out.last_7_days.deferred == 4
    assert (out.pending, out.trusted, out.auto_whitelisted) == (2, 1, 0)
    assert out.domains_off == 1 and out.delay_seconds == 900  # the configured default
    assert (out.ipv4_prefix, out.ipv6_prefix) == (24, 64)  # shown on the status page


def test_status_is_the_providers(monsite: Customer) -> None:
    with pytest.raises(PermissionDeniedError):
        services.status(monsite.actor)


def test_why_was_my_mail_delayed(
    make_engine: EngineFactory, clock: Clock, provider: Actor, monsite: Customer
) -> None:
    traffic(make_engine, clock)
    waiting = services.lookup(provider, sender="Alice@Example.org", now=clock.now)
    assert waiting.summary == (
        "1 message(s) are waiting for the sending server to retry; "
        "a retry after 2027-01-18 08:21 UTC will be accepted."
    )
    (alice,) = waiting.triplets
    assert alice.state == "waiting" and alice.client_ip == "192.0.2.10"
    assert alice.accept_after is not None and alice.retry_until is not None
    assert "will be accepted, if it comes before 2027-01-20 08:06 UTC" in alice.explanation

    bob = services.lookup(provider, recipient="contact@monsite.be", now=clock.now).triplets[0]
    assert bob.state == "trusted" and bob.delayed_seconds == 360
    assert bob.explanation.startswith("Delayed 6 minutes by greylisting: first attempt at")

    spam = services.lookup(provider, client_ip="203.0.113.1", now=clock.now).triplets[0]
    assert spam.state == "expired" and "never retried in time" in spam.explanation

    everything = services.lookup(provider, recipient="monsite.be", now=clock.now)
    assert {t.sender for t in everything.triplets} == {
        "alice@example.org",
        "bob@example.net",
        "spam@spam.example",
    }
    nothing = services.lookup(provider, sender="nobody@example.org", now=clock.now)
    assert nothing.triplets == [] and "no record" in nothing.summary


def test_lookup_explains_exemptions(
    provider: Actor, monsite: Customer, make_engine: EngineFactory
) -> None:
    services.add_whitelist(provider, "client", "192.0.2.0/24")
    services.set_domain_greylisting(monsite.actor, "monsite.be", enabled=False)
    out = services.lookup(provider, recipient="info@monsite.be", client_ip="192.0.2.5")
    assert out.summary == "This mail is not greylisted."
    assert any("Greylisting is off for monsite.be" in line for line in out.exemptions)
    assert any("client whitelist entry 192.0.2.0/24" in line for line in out.exemptions)


def test_lookup_needs_a_question(provider: Actor) -> None:
    with pytest.raises(ValidationError):
        services.lookup(provider)
    with pytest.raises(ValidationError) as error:
        services.lookup(provider, client_ip="192.0.2")
    assert error.value.field == "client_ip"


def test_customers_only_see_their_own_mail(
    make_engine: EngineFactory, clock: Clock, monsite: Customer, autre: Customer
) -> None:
    traffic(make_engine, clock)
    mine = services.lookup(monsite.actor, client_ip="192.0.2.1", now=clock.now)
    assert [t.recipient for t in mine.triplets] == ["info@monsite.be"]
    theirs = services.lookup(autre.actor, client_ip="192.0.2.1", now=clock.now)
    assert [t.recipient for t in theirs.triplets] == ["info@autresite.be"]
    assert services.lookup(autre.actor, recipient="info@monsite.be").triplets == []
    user = create_mailbox(
        monsite.actor, monsite.domain, password=STRONG, addresses=["contact@monsite.be"]
    ).mailbox
    own = services.lookup(Actor.for_mailbox(user), recipient="monsite.be", now=clock.now)
    assert [t.recipient for t in own.triplets] == ["contact@monsite.be"]


def test_triplet_lists(make_engine: EngineFactory, clock: Clock, provider: Actor) -> None:
    traffic(make_engine, clock)
    assert len(services.list_triplets(provider, now=clock.now)) == 4
    assert [t.sender for t in services.list_triplets(provider, state="trusted")] == [
        "bob@example.net"
    ]
    with pytest.raises(ValidationError):
        services.list_triplets(provider, state="sideways")


def test_whitelist_editing(provider: Actor, monsite: Customer) -> None:
    before = Revision.objects.filter(name="rules").first()
    added = services.add_whitelist(provider, "client", "192.0.2.7/24", comment="partner")
    assert (added.value, added.source, added.comment) == ("192.0.2.0/24", provider.name, "partner")
    assert Revision.objects.get(name="rules").value == (before.value if before else 0) + 1
    with pytest.raises(ConflictError):
        services.add_whitelist(provider, "client", "192.0.2.0/24")
    listed = services.list_whitelist(provider, kind="client")
    assert listed[-1].value == "192.0.2.0/24"
    assert any(e.source == "default" and e.value == "google.com" for e in listed)
    assert services.list_whitelist(provider, include_default=False)[0].value == "192.0.2.0/24"
    services.remove_whitelist(provider, "client", "192.0.2.0/24")
    with pytest.raises(NotFoundError):
        services.remove_whitelist(provider, "client", "192.0.2.0/24")
    with pytest.raises(ValidationError) as error:
        services.remove_whitelist(provider, "client", "google.com")
    assert "default_whitelist = false" in error.value.message
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    assert "greylist.whitelist.add" in actions and "greylist.whitelist.remove" in actions
    # The longest entry allowed fits the audit log too (found by schemathesis on
    # PostgreSQL, which refuses a value longer than its column).
    longest = "0" * 300
    assert services.add_whitelist(provider, "client", longest).value == longest
    services.remove_whitelist(provider, "client", longest)
    assert AuditEntry.objects.filter(target=longest, details__kind="client").count() == 2
    for call in (
        lambda: services.add_whitelist(monsite.actor, "client", "192.0.2.1"),
        lambda: services.list_whitelist(monsite.actor),
        lambda: services.remove_whitelist(monsite.actor, "client", "192.0.2.1"),
    ):
        with pytest.raises(PermissionDeniedError):
            call()


def test_postgrey_import_is_all_or_nothing(provider: Actor) -> None:
    good = "# partners\nmail.partner.example\n192.0.2.0/24\n203.0.113\n"
    out = services.import_whitelist(provider, "client", good, "whitelist_clients.local")
    assert (out.added, out.already_present) == (3, 0)
    entry = WhitelistEntry.objects.get(value="203.0.113.0/24")
    assert entry.source == "import:whitelist_clients.local" and entry.comment == "partners"
    again = services.import_whitelist(provider, "client", good + "new.example\n", "f")
    assert (again.added, again.already_present) == (1, 3)
    with pytest.raises(ValidationError) as error:
        services.import_whitelist(provider, "client", "ok.example\nnot valid\n", "bad")
    assert "line 2" in error.value.message
    assert not WhitelistEntry.objects.filter(value="ok.example").exists()


def test_domain_switch_permissions(provider: Actor, monsite: Customer, autre: Customer) -> None:
    out = services.set_domain_greylisting(monsite.actor, "monsite.be", enabled=False)
    assert out.enabled is False and out.delay_seconds == 900
    with pytest.raises(NotFoundError):  # another customer's domain does not exist for them
        services.set_domain_greylisting(monsite.actor, "autresite.be", enabled=False)
    with pytest.raises(NotFoundError):
        services.domain_greylisting(monsite.actor, "autresite.be")
    with pytest.raises(PermissionDeniedError):
        services.set_domain_greylisting(monsite.actor, "monsite.be", delay="1m")
    out = services.set_domain_greylisting(provider, "monsite.be", delay="10m")
    assert (out.delay_seconds, out.delay_overridden) == (600, True)
    out = services.set_domain_greylisting(provider, "monsite.be", delay=None)
    assert (out.delay_seconds, out.delay_overridden) == (900, False)
    for bad in ("3d", "soon"):
        with pytest.raises(ValidationError):
            services.set_domain_greylisting(provider, "monsite.be", delay=bad)
    entry = AuditEntry.objects.filter(action="greylist.domain").last()
    assert entry is not None and entry.domain == "monsite.be"


def test_mailbox_switch_permissions(monsite: Customer, autre: Customer) -> None:
    user = create_mailbox(monsite.actor, monsite.domain, password=STRONG).mailbox
    out = services.set_mailbox_greylisting(monsite.actor, "monsite.be", user.login, enabled=False)
    assert out.enabled is False and out.effective is False
    assert services.domain_greylisting(monsite.actor, "monsite.be").mailboxes_off == [user.login]
    user_actor = Actor.for_mailbox(user)
    assert services.mailbox_greylisting(user_actor, "monsite.be", user.login).enabled is False
    with pytest.raises(PermissionDeniedError):
        services.set_mailbox_greylisting(user_actor, "monsite.be", user.login, enabled=True)
    with pytest.raises(NotFoundError):
        services.set_mailbox_greylisting(autre.actor, "monsite.be", user.login, enabled=True)
    with pytest.raises(NotFoundError):
        services.set_mailbox_greylisting(autre.actor, "autresite.be", user.login, enabled=True)
    services.set_mailbox_greylisting(monsite.actor, "monsite.be", user.login, enabled=True)
    services.set_domain_greylisting(monsite.actor, "monsite.be", enabled=False)
    shown = services.mailbox_greylisting(monsite.actor, "monsite.be", user.login)
    assert shown.enabled is True and shown.effective is False


def test_purge(make_engine: EngineFactory, clock: Clock, provider: Actor) -> None:
    traffic(make_engine, clock)
    assert services.purge(provider, now=clock.now).triplets == 1  # the spammer's
    assert services.purge(provider, everything=True).triplets == 3
    assert not Triplet.objects.exists()
    with pytest.raises(PermissionDeniedError):
        services.purge(Actor("owner", "monsite", mailbox_id=1))


def test_metrics(make_engine: EngineFactory, clock: Clock, provider: Actor) -> None:
    traffic(make_engine, clock)
    figures = {
        (m.name, tuple(sorted(m.labels.items()))): m.value for m in services.metrics(now=clock.now)
    }
    host = ("host", "maximusconfessor.all2all.org")
    assert figures[("courriel_greylist_decisions_total", (host, ("result", "deferred")))] == 4
    assert figures[("courriel_greylist_decisions_total", (host, ("result", "passed_retry")))] == 1
    assert figures[("courriel_greylist_triplets", (("state", "pending"),))] == 2
    assert figures[("courriel_greylist_auto_whitelisted_networks", ())] == 0
