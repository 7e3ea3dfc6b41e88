"""Chapter 10: mail aliases of every kind."""

from __future__ import annotations

import pytest

from courriel.accounts.models import Alias
from courriel.accounts.services import aliases as svc
from courriel.accounts.services.mailboxes import create_mailbox
from courriel.errors import ConflictError, NotFoundError, ValidationError
from tests.fixtures.accounts import STRONG, Customer


def test_frederic_forwards_to_gmail(monsite: Customer) -> None:
    alias = svc.create_alias(
        monsite.actor, monsite.domain, "frederic", forward_to=["frederic@gmail.com"]
    )
    assert svc.alias_email(alias) == "frederic@monsite.be"
    assert svc.describe_destinations(alias) == ["Address frederic@gmail.com"]


def test_alias_kinds(monsite: Customer) -> None:
    box = create_mailbox(monsite.actor, monsite.domain, password=STRONG).mailbox
    svc.create_alias(monsite.actor, monsite.domain, "sales", mailboxes=[box.login])
    svc.create_alias(monsite.actor, monsite.domain, "all", everyone=True)
    svc.create_alias(
        monsite.actor,
        monsite.domain,
        "old",
        bounce=True,
        bounce_message="This address is no longer in use.",
    )
    catch_all = svc.create_alias(
        monsite.actor, monsite.domain, None, mailboxes=[monsite.owner.login]
    )
    assert svc.alias_name(catch_all) == ""
    assert svc.alias_email(catch_all) == "*@monsite.be"
    with pytest.raises(ConflictError, match="catch-all"):
        svc.create_alias(monsite.actor, monsite.domain, "*", everyone=True)


def test_invalid_alias_definitions(monsite: Customer) -> None:
    with pytest.raises(ValidationError, match="Choose where"):
        svc.create_alias(monsite.actor, monsite.domain, "empty")
    with pytest.raises(ValidationError, match="cannot also deliver"):
        svc.create_alias(monsite.actor, monsite.domain, "x", bounce=True, everyone=True)
    with pytest.raises(ValidationError, match="No mailbox 'ghost'"):
        svc.create_alias(monsite.actor, monsite.domain, "x", mailboxes=["ghost"])
    with pytest.raises(ValidationError):
        svc.create_alias(monsite.actor, monsite.domain, "bad name", everyone=True)
    with pytest.raises(ConflictError, match="already"):
        svc.create_alias(monsite.actor, monsite.domain, "postmaster", everyone=True)
    with pytest.raises(ConflictError, match="mailbox monsite"):
        svc.create_alias(monsite.actor, monsite.domain, "monsite", everyone=True)
    assert Alias.objects.filter(domain=monsite.domain).count() == 4


def test_modify_and_delete_selected_aliases(monsite: Customer) -> None:
    alias = svc.create_alias(
        monsite.actor, monsite.domain, "frederic", forward_to=["frederic@gmail.com"]
    )
    svc.modify_alias(monsite.actor, alias, name="fred", forward_to=["fred@gmail.com"])
    alias = svc.get_alias(monsite.actor, monsite.domain, "fred")
    assert alias.forward_to == ["fred@gmail.com"]
    with pytest.raises(NotFoundError):
        svc.get_alias(monsite.actor, monsite.domain, "frederic")
    deleted = svc.delete_aliases(
        monsite.actor, [alias, svc.get_alias(monsite.actor, monsite.domain, "abuse")]
    )
    assert deleted == ["fred@monsite.be", "abuse@monsite.be"]


def test_other_customers_aliases_are_invisible(monsite: Customer, autre: Customer) -> None:
    with pytest.raises(NotFoundError):
        svc.get_alias(autre.actor, monsite.domain, "postmaster")
    with pytest.raises(NotFoundError):
        svc.create_alias(autre.actor, monsite.domain, "x", everyone=True)
    with pytest.raises(ValidationError, match="No mailbox 'monsite'"):
        svc.create_alias(autre.actor, autre.domain, "x", mailboxes=["monsite"])
