"""Chapter 4: plans as data the provider edits; hosting servers."""

from __future__ import annotations

import pytest

from courriel.accounts.models import Plan
from courriel.accounts.permissions import Actor
from courriel.accounts.services import domains as domain_service
from courriel.accounts.services import plans as plan_service
from courriel.accounts.services import servers as server_service
from courriel.errors import ConflictError, LimitError, PermissionDeniedError, ValidationError
from tests.fixtures.accounts import Customer

GB, MB = 1024**3, 1024**2


def test_seeded_plans_are_the_manuals_table(plans: None) -> None:
    table = {
        p.name: (
            p.web_quota,
            p.mail_quota,
            p.max_mailboxes,
            p.max_servers,
            p.max_domain_aliases,
            p.default_mailbox_quota,
        )
        for p in Plan.objects.all()
    }
    assert table == {
        "simple": (50 * MB, 3 * GB, 1, 1, None, 3 * GB),
        "recommended": (10 * GB, 30 * GB, 10, 5, None, 3 * GB),
        "large": (100 * GB, 300 * GB, 100, 15, None, 3 * GB),
    }


def test_provider_adds_and_edits_plans(plans: None, provider: Actor) -> None:
    gold = plan_service.create_plan(provider, "gold", mail_quota=500 * GB, max_mailboxes=500)
    assert gold.default_mailbox_quota == 3 * GB and gold.max_servers is None
    plan_service.modify_plan(provider, gold, max_servers=20, label="Gold")
    gold.refresh_from_db()
    assert (gold.max_servers, gold.label) == (20, "Gold")
    with pytest.raises(ValidationError, match="cannot be more than"):
        plan_service.create_plan(provider, "tiny", mail_quota=1 * GB, default_mailbox_quota=2 * GB)
    with pytest.raises(ConflictError):
        plan_service.create_plan(provider, "gold")


def test_plans_in_use_cannot_shrink_below_usage_or_be_deleted(
    monsite: Customer, provider: Actor
) -> None:
    recommended = plan_service.get_plan("recommended")
    with pytest.raises(LimitError, match="already has 1 virtual servers"):
        plan_service.modify_plan(provider, recommended, max_servers=0)
    with pytest.raises(ConflictError, match="used by 1"):
        plan_service.delete_plan(provider, recommended)
    with pytest.raises(PermissionDeniedError):
        plan_service.modify_plan(monsite.actor, recommended, max_mailboxes=1000)


def test_hosting_servers(servers, provider: Actor, monsite: Customer) -> None:
    moses = servers[2]
    server_service.modify_server(provider, moses, accepts_domains=False, ip_address="10.0.0.3")
    with pytest.raises(ValidationError):
        server_service.modify_server(provider, moses, ip_address="999.1.1.1")
    with pytest.raises(ConflictError, match="still hosts 1"):
        server_service.delete_server(provider, servers[0])
    server_service.delete_server(provider, moses)
    with pytest.raises(PermissionDeniedError):
        server_service.add_server(monsite.actor, "x", "x.all2all.org")


def test_over_long_names_are_form_errors_not_database_errors(
    plans: None, servers, provider: Actor, monsite: Customer
) -> None:
    """PostgreSQL refuses an over-long value outright; SQLite would keep it: both get a
    clear error on the field instead."""
    with pytest.raises(ValidationError, match=r"Name is too long \(at most 50") as raised:
        plan_service.create_plan(provider, "p" * 51)
    assert raised.value.field == "name"
    with pytest.raises(ValidationError, match=r"Label is too long \(at most 100"):
        plan_service.create_plan(provider, "gold", label="L" * 101)
    assert not Plan.objects.filter(name="gold").exists()
    with pytest.raises(ValidationError, match="at most 300"):
        server_service.modify_server(provider, servers[2], admin_url="https://x/" + "a" * 300)
    with pytest.raises(ValidationError, match=r"Description is too long \(at most 255"):
        domain_service.modify_domain(provider, monsite.domain, description="d" * 256)
