"""Domain ownership (issue 11, item 1): a customer could capture anyone's mail by adding
gmail.com as a sub-server or outlook.com as a domain alias. Now a name the customer has
not proven to control is *pending*: it takes no mail and changes no routing until a
DNS TXT record proves control, or the provider approves it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from courriel.accounts.models import Domain, DomainAlias
from courriel.accounts.permissions import Actor
from courriel.accounts.resolution import resolve
from courriel.accounts.services import aliases, domains, ownership
from courriel.accounts.services.mailboxes import create_mailbox
from courriel.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
    ValidationError,
)
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.nsd import PrivateNSD


def test_a_foreign_sub_server_takes_no_mail_until_verified(
    monsite: Customer, autre: Customer
) -> None:
    """The attack as found: gmail.com as a sub-server with a catch-all to monsite."""
    gmail = domains.create_domain(monsite.actor, "gmail.com", parent=monsite.domain).domain
    assert gmail.pending
    aliases.create_alias(monsite.actor, gmail, "*", mailboxes=["monsite"])
    for address in ("anyone@gmail.com", "postmaster@gmail.com"):
        assert resolve(address).status == "not_local", address
    # Another customer forwarding to gmail.com still forwards out.
    sender = create_mailbox(
        autre.actor, autre.domain, password=STRONG, forward_to=["friend@gmail.com"]
    ).mailbox
    result = resolve(f"{sender.login}@autresite.be")
    assert result.forwards == ["friend@gmail.com"]
    assert [copy.login for copy in result.copies] == [sender.login]


def test_a_foreign_domain_alias_changes_no_routing(monsite: Customer) -> None:
    alias = domains.add_domain_alias(monsite.actor, monsite.domain, "outlook.com")
    assert alias.pending
    assert resolve("postmaster@outlook.com").status == "not_local"
    assert resolve("ceo@outlook.com").status == "not_local"


def test_subdomains_of_a_domain_the_owner_owns_work_at_once(monsite: Customer) -> None:
    shop = domains.create_domain(monsite.actor, "shop.monsite.be", parent=monsite.domain).domain
    assert not shop.pending and shop.verified_by == "subdomain"
    assert resolve("postmaster@shop.monsite.be").status == "deliver"
    mail = domains.add_domain_alias(monsite.actor, monsite.domain, "mail.monsite.be")
    assert not mail.pending
    assert resolve("postmaster@mail.monsite.be").status == "deliver"
    # Under a verified sub-server too; under a pending claim, still pending.
    deep = domains.add_domain_alias(monsite.actor, shop, "eu.shop.monsite.be")
    assert not deep.pending
    domains.create_domain(monsite.actor, "gmail.com", parent=monsite.domain)
    under_claim = domains.add_domain_alias(monsite.actor, monsite.domain, "mx.gmail.com")
    assert under_claim.pending


def test_a_name_under_another_customers_domain_is_refused(
    monsite: Customer, autre: Customer
) -> None:
    before = (Domain.objects.count(), DomainAlias.objects.count())
    for attempt in (
        lambda: domains.create_domain(monsite.actor, "www.autresite.be", parent=monsite.domain),
        lambda: domains.add_domain_alias(monsite.actor, monsite.domain, "mx.autresite.be"),
        lambda: domains.create_domain(monsite.actor, "autresite.be", parent=monsite.domain),
        lambda: domains.add_domain_alias(monsite.actor, monsite.domain, "autresite.be"),
    ):
        with pytest.raises((PermissionDeniedError, ConflictError)) as refused:
            attempt()
        assert "not available" in refused.value.message
        assert "autresite0001" not in refused.value.message and "owner" not in refused.value.message
    assert (Domain.objects.count(), DomainAlias.objects.count()) == before


def test_another_customers_pending_claim_is_not_available_to_them(
    monsite: Customer, autre: Customer, provider: Actor
) -> None:
    domains.create_domain(monsite.actor, "gmail.com", parent=monsite.domain)
    with pytest.raises(ConflictError) as refused:
        domains.add_domain_alias(autre.actor, autre.domain, "gmail.com")
    assert "not available" in refused.value.message and "monsite" not in refused.value.message
    # The provider is told whose claim it is, to delete it if it is a squatter's.
    with pytest.raises(ConflictError) as told:
        domains.create_domain(provider, "gmail.com", plan="simple")
    assert "pending" in told.value.message and "monsite.be" in told.value.message


@pytest.mark.parametrize("name", ["co.uk", "com.au", "github.io", "blogspot.com"])
def test_public_suffixes_are_never_domains(monsite: Customer, provider: Actor, name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        domains.create_domain(provider, name, plan="simple")
    assert "public suffix" in refused.value.message
    with pytest.raises(ValidationError):
        domains.add_domain_alias(provider, monsite.domain, name)
    with pytest.raises(ValidationError):
        domains.create_domain(monsite.actor, name, parent=monsite.domain)
    assert not Domain.objects.filter(name=name).exists()
    # A name registered under one is fine (pending for a customer).
    assert domains.create_domain(monsite.actor, f"monsite.{name}", parent=monsite.domain)


def test_the_provider_creates_any_name_verified(monsite: Customer, provider: Actor) -> None:
    sub = domains.create_domain(provider, "gmail.com", parent=monsite.domain).domain
    alias = domains.add_domain_alias(provider, monsite.domain, "outlook.com")
    assert not sub.pending and not alias.pending
    assert sub.verified_by == alias.verified_by == "provider"
    assert resolve("postmaster@gmail.com").status == "deliver"
    assert resolve("postmaster@outlook.com").status == "deliver"


def test_the_provider_approves_a_pending_name(monsite: Customer, provider: Actor) -> None:
    domains.add_domain_alias(monsite.actor, monsite.domain, "monsite.eu")
    domains.create_domain(monsite.actor, "monsite.nl", parent=monsite.domain)
    with pytest.raises(PermissionDeniedError):
        ownership.approve(monsite.actor, "monsite.eu")
    ownership.approve(provider, "monsite.eu")
    ownership.approve(provider, "monsite.nl")
    assert resolve("postmaster@monsite.eu").status == "deliver"
    assert resolve("postmaster@monsite.nl").status == "deliver"
    assert DomainAlias.objects.get(name="monsite.eu").verified_by == "provider"
    with pytest.raises(NotFoundError):
        ownership.approve(provider, "nothing-here.be")


def _poll(check: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except ValidationError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_control_proven_by_a_dns_txt_record(
    monsite: Customer, autre: Customer, nsd: PrivateNSD
) -> None:
    sub = domains.create_domain(monsite.actor, "monsite-shop.fr", parent=monsite.domain).domain
    record, value = ownership.verification_record(sub)
    assert record == "_courriel-verify.monsite-shop.fr" and len(value) >= 20
    nsd.zone("monsite-shop.fr", ["@ 1 IN A 127.0.0.1"])
    nsd.start()
    with pytest.raises(ValidationError) as missing:
        ownership.verify(monsite.actor, "monsite-shop.fr")
    assert record in missing.value.message and value in missing.value.message
    nsd.zone("monsite-shop.fr", [nsd.txt("_courriel-verify", "someone-elses-token", ttl=1)])
    nsd.reload()
    with pytest.raises(ValidationError):
        _poll(lambda: ownership.verify(monsite.actor, "monsite-shop.fr"), timeout=0)
    # Another customer can neither see nor verify the claim.
    with pytest.raises(NotFoundError):
        ownership.verify(autre.actor, "monsite-shop.fr")
    nsd.zone("monsite-shop.fr", [nsd.txt("_courriel-verify", value, ttl=1)])
    nsd.reload()
    verified = _poll(lambda: ownership.verify(monsite.actor, "monsite-shop.fr"))
    assert not verified.pending and verified.verified_by == "dns"
    assert resolve("postmaster@monsite-shop.fr").status == "deliver"


def test_a_domain_alias_is_verified_the_same_way(monsite: Customer, nsd: PrivateNSD) -> None:
    alias = domains.add_domain_alias(monsite.actor, monsite.domain, "monsite.de")
    _, value = ownership.verification_record(alias)
    nsd.zone("monsite.de", [nsd.txt("_courriel-verify", value)])
    nsd.start()
    assert not ownership.verify(monsite.actor, "monsite.de").pending
    assert resolve("postmaster@monsite.de").status == "deliver"


def test_dns_that_cannot_answer_is_a_temporary_error(monsite: Customer, nsd: PrivateNSD) -> None:
    domains.create_domain(monsite.actor, "elsewhere.org", parent=monsite.domain)
    nsd.zone("unrelated.org", [])
    nsd.start()  # REFUSED for elsewhere.org: nobody could answer
    with pytest.raises(ServiceUnavailableError) as refused:
        ownership.verify(monsite.actor, "elsewhere.org")
    assert "try again" in refused.value.message
    assert Domain.objects.get(name="elsewhere.org").pending


def test_the_migration_marks_existing_domains_verified(transactional_db: None) -> None:
    """Domains and domain aliases made before ownership existed keep taking mail."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("accounts", "0002_dkim_key")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    server = old.get_model("accounts", "HostingServer").objects.create(name="old", hostname="o.be")
    plan = old.get_model("accounts", "Plan").objects.create(name="oldplan")
    domain = old.get_model("accounts", "Domain").objects.create(
        name="ancien.be", plan=plan, server=server, prefix="ancien", admin_group="ancien"
    )
    old.get_model("accounts", "DomainAlias").objects.create(name="ancien.eu", domain=domain)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert not Domain.objects.get(name="ancien.be").pending
    assert not DomainAlias.objects.get(name="ancien.eu").pending
    assert Domain.objects.get(name="ancien.be").verified_by == "migration"
