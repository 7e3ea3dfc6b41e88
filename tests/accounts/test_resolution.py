"""Address resolution: the one answer to "what happens to mail for this address?"."""

from __future__ import annotations

from datetime import date, datetime, time

from django.utils import timezone

from courriel.accounts.permissions import Actor
from courriel.accounts.resolution import resolve
from courriel.accounts.services import aliases, domains
from courriel.accounts.services import mailboxes as boxes
from tests.fixtures.accounts import STRONG, Customer


def _box(customer: Customer, **kwargs):
    return boxes.create_mailbox(customer.actor, customer.domain, password=STRONG, **kwargs).mailbox


def logins(result) -> list[str]:
    return sorted(copy.login for copy in result.copies)


def test_primary_and_additional_addresses(monsite: Customer) -> None:
    _box(monsite, real_name="Info", addresses=["info", "contact", "information"])
    for address in (
        "monsite0001@monsite.be",
        "info@monsite.be",
        "Contact@MONSITE.be",
        "information@monsite.be",
    ):
        result = resolve(address)
        assert result.status == "deliver" and logins(result) == ["monsite0001"]
    assert resolve("nobody@monsite.be").status == "unknown"
    assert resolve("x@gmail.com").status == "not_local"
    assert resolve("not an address").status == "invalid"


def test_disabled_primary_address_is_unknown(monsite: Customer) -> None:
    _box(monsite, primary_enabled=False, addresses=["info"])
    assert resolve("monsite0001@monsite.be").status == "unknown"
    assert resolve("info@monsite.be").status == "deliver"


def test_sub_addresses_and_domain_aliases(monsite: Customer) -> None:
    _box(monsite, addresses=["info"])
    domains.add_domain_alias(Actor.system(), monsite.domain, "monsite.eu")
    result = resolve("info+newsletter@monsite.eu")
    assert logins(result) == ["monsite0001"]
    assert result.copies[0].address == "info+newsletter@monsite.be"


def test_default_aliases_reach_the_owner(monsite: Customer) -> None:
    for name in ("abuse", "hostmaster", "postmaster", "webmaster"):
        assert logins(resolve(f"{name}@monsite.be")) == ["monsite"]


def test_forwarding_with_and_without_a_copy(monsite: Customer) -> None:
    box = _box(monsite, addresses=["info"])
    boxes.set_forwarding(monsite.actor, box, ["monsite@gmail.com"], keep=True)
    result = resolve("info@monsite.be")
    assert logins(result) == ["monsite0001"] and result.forwards == ["monsite@gmail.com"]
    boxes.set_forwarding(monsite.actor, box, ["monsite@gmail.com"], keep=False)
    result = resolve("info@monsite.be")
    assert result.copies == [] and result.forwards == ["monsite@gmail.com"]
    assert result.status == "deliver"


def test_forward_to_colleagues_follows_their_own_settings(monsite: Customer) -> None:
    info = _box(monsite, addresses=["info"])
    john = _box(monsite, addresses=["john"])
    boxes.set_forwarding(monsite.actor, john, ["john@gmail.com"], keep=True)
    boxes.set_forwarding(monsite.actor, info, ["john@monsite.be"], keep=True)
    result = resolve("info@monsite.be")
    assert logins(result) == [info.login, john.login]
    assert result.forwards == ["john@gmail.com"]


def test_alias_kinds_resolve(monsite: Customer) -> None:
    a = _box(monsite)
    b = _box(monsite)
    aliases.create_alias(
        monsite.actor, monsite.domain, "frederic", forward_to=["frederic@gmail.com"]
    )
    aliases.create_alias(monsite.actor, monsite.domain, "all", everyone=True)
    aliases.create_alias(monsite.actor, monsite.domain, "old", bounce=True, bounce_message="Gone.")
    assert resolve("frederic@monsite.be").forwards == ["frederic@gmail.com"]
    assert logins(resolve("all@monsite.be")) == sorted(["monsite", a.login, b.login])
    bounced = resolve("old@monsite.be")
    assert bounced.status == "bounce" and bounced.bounce_message == "Gone."
    assert resolve("random@monsite.be").status == "unknown"
    aliases.create_alias(monsite.actor, monsite.domain, "*", mailboxes=[a.login])
    assert logins(resolve("random@monsite.be")) == [a.login]
    assert logins(resolve("postmaster@monsite.be")) == ["monsite"]  # exact beats catch-all


def test_alias_chains_and_loops(monsite: Customer) -> None:
    box = _box(monsite)
    aliases.create_alias(monsite.actor, monsite.domain, "c", mailboxes=[box.login])
    aliases.create_alias(monsite.actor, monsite.domain, "b", forward_to=["c@monsite.be"])
    aliases.create_alias(monsite.actor, monsite.domain, "a", forward_to=["b@monsite.be"])
    assert logins(resolve("a@monsite.be")) == [box.login]
    # Now make a loop: c -> a.
    c = aliases.get_alias(monsite.actor, monsite.domain, "c")
    aliases.modify_alias(monsite.actor, c, mailboxes=[], forward_to=["a@monsite.be"])
    result = resolve("a@monsite.be")
    assert result.status == "loop"
    assert any("loop" in line for line in result.trace)


def test_duplicate_paths_deliver_one_copy(monsite: Customer) -> None:
    box = _box(monsite, addresses=["info"])
    aliases.create_alias(
        monsite.actor,
        monsite.domain,
        "team",
        mailboxes=[box.login],
        forward_to=["info@monsite.be"],
        everyone=True,
    )
    result = resolve("team@monsite.be")
    assert sorted(c.login for c in result.copies) == sorted({"monsite", box.login})


def test_autoreply_only_between_its_dates(monsite: Customer) -> None:
    box = _box(monsite, addresses=["info"])
    boxes.set_autoreply(
        monsite.actor,
        box,
        enabled=True,
        message="Away",
        start=date(2010, 9, 9),
        end=date(2010, 9, 19),
    )

    def on(day: date):
        return resolve("info@monsite.be", now=timezone.make_aware(datetime.combine(day, time(12))))

    assert on(date(2010, 9, 8)).autoreplies == []
    assert on(date(2010, 9, 9)).autoreplies == [box.pk]
    assert on(date(2010, 9, 19)).autoreplies == [box.pk]
    assert on(date(2010, 9, 20)).autoreplies == []
