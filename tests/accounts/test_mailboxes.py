"""Chapters 6, 7, 8, 9 and 11: mailboxes, additional addresses, forwarding,
automatic replies and passwords."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from courriel.accounts import passwords
from courriel.accounts.models import Address, Mailbox
from courriel.accounts.permissions import Actor
from courriel.accounts.services import limits
from courriel.accounts.services import mailboxes as svc
from courriel.errors import (
    ConflictError,
    LimitError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from tests.fixtures.accounts import STRONG, Customer


def create(customer: Customer, **kwargs) -> Mailbox:
    kwargs.setdefault("password", STRONG)
    return svc.create_mailbox(customer.actor, customer.domain, **kwargs).mailbox


def test_naming_convention_suggests_prefix_and_number(monsite: Customer) -> None:
    assert svc.suggest_login(monsite.domain) == "monsite0001"
    first = create(monsite, real_name="Info")
    assert first.login == "monsite0001"
    assert svc.suggest_login(monsite.domain) == "monsite0002"
    create(monsite, login="monsite0003")
    assert svc.suggest_login(monsite.domain) == "monsite0002"
    create(monsite, login="monsite0002")
    create(monsite, login="monsite10000")  # past four digits
    assert svc.suggest_login(monsite.domain) == "monsite0004"
    create(monsite, login="monsitexyz")  # not numbered: no effect
    assert svc.suggest_login(monsite.domain) == "monsite0004"


def test_info_mailbox_of_the_manual(monsite: Customer) -> None:
    box = create(
        monsite,
        real_name="Info",
        addresses=["info@monsite.be", "contact@monsite.be", "information"],
    )
    assert svc.primary_email(box) == "monsite0001@monsite.be"
    assert svc.additional_emails(box) == [
        "contact@monsite.be",
        "info@monsite.be",
        "information@monsite.be",
    ]
    assert box.quota == 3 * 1024**3  # the plan's default, "3GB"
    assert box.maildir == "monsite.be/homes/monsite0001/Maildir"
    assert limits.usage(monsite.domain).additional_mailboxes == 9


def test_eleventh_mailbox_is_refused_on_recommended(monsite: Customer) -> None:
    for _ in range(10):
        create(monsite)
    assert limits.usage(monsite.domain).additional_mailboxes == 0
    with pytest.raises(LimitError, match="allows 10 mailboxes"):
        create(monsite)
    assert Mailbox.objects.filter(domain=monsite.domain).count() == 11  # 10 + owner


def test_quota_never_above_the_domain_total(monsite: Customer) -> None:
    with pytest.raises(LimitError, match="more than the 30 GB"):
        create(monsite, quota=31 * 1024**3)
    assert create(monsite, quota=None).quota is None  # "Unlimited"
    with pytest.raises(ValidationError):
        create(monsite, quota=0)


def test_addresses_are_unique_across_mailboxes_and_aliases(monsite: Customer) -> None:
    create(monsite, addresses=["info"])
    with pytest.raises(ConflictError, match="info@monsite.be is already used"):
        create(monsite, addresses=["INFO@monsite.be"])
    with pytest.raises(ConflictError):
        create(monsite, addresses=["postmaster"])
    with pytest.raises(ConflictError):
        create(monsite, primary_local_part="abuse")
    assert Mailbox.objects.filter(domain=monsite.domain).count() == 2  # nothing half-made


def test_addresses_outside_the_customer_are_refused(monsite: Customer, autre: Customer) -> None:
    with pytest.raises(ValidationError, match="not in monsite.be"):
        create(monsite, addresses=["info@autresite.be"])
    with pytest.raises(ValidationError):
        create(monsite, addresses=["in fo"])
    with pytest.raises(ValidationError, match="sub-addresses"):
        create(monsite, addresses=["info+x"])


def test_address_in_a_domain_alias_points_to_the_real_domain(monsite: Customer) -> None:
    from courriel.accounts.services.domains import add_domain_alias

    add_domain_alias(monsite.actor, monsite.domain, "monsite.eu")
    with pytest.raises(ValidationError, match="add info@monsite.be instead"):
        create(monsite, addresses=["info@monsite.eu"])


@pytest.mark.parametrize(
    "weak", ["short1A!", "monsite0001Abc!", "password123", "aaaaaaaaaaaaaaaa", "alllowercase"]
)
def test_weak_passwords_are_refused(monsite: Customer, weak: str) -> None:
    with pytest.raises(ValidationError):
        create(monsite, password=weak)


def test_password_change_and_generate_once(monsite: Customer) -> None:
    box = create(monsite)
    svc.set_password(monsite.actor, box, "N3w-Passw0rd-2026")
    box.refresh_from_db()
    assert svc.authenticate("monsite0001", "N3w-Passw0rd-2026").ok
    assert not svc.authenticate("monsite0001", STRONG).ok
    shown = svc.generate_new_password(monsite.actor, box)
    assert svc.authenticate("monsite0001", shown).ok
    box.refresh_from_db()
    assert shown not in box.password_hash


def test_authentication_by_login_or_primary_address_and_disabled_login(
    monsite: Customer,
) -> None:
    box = create(monsite, addresses=["info"])
    assert svc.authenticate("monsite0001@monsite.be", STRONG).ok
    assert not svc.authenticate("info@monsite.be", STRONG).ok  # only the primary address
    assert not svc.authenticate("nobody", STRONG).ok
    svc.modify_mailbox(monsite.actor, box, login_disabled=True)
    result = svc.authenticate("monsite0001", STRONG)
    assert result.outcome is svc.AuthOutcome.DISABLED


def test_forwarding_validation(monsite: Customer) -> None:
    box = create(monsite)
    svc.set_forwarding(monsite.actor, box, ["Monsite@Gmail.com"], keep=True)
    box.refresh_from_db()
    assert box.forward_to == ["monsite@gmail.com"] and box.deliver_normally
    with pytest.raises(ValidationError, match="thrown away"):
        svc.set_forwarding(monsite.actor, box, [], keep=False)
    with pytest.raises(ValidationError, match="does not exist here"):
        svc.set_forwarding(monsite.actor, box, ["john@monsite.be"], keep=True)
    with pytest.raises(ValidationError):
        svc.set_forwarding(monsite.actor, box, ["not an address"], keep=True)
    box.refresh_from_db()
    assert box.forward_to == ["monsite@gmail.com"]


def test_autoreply_dates_and_interval(monsite: Customer) -> None:
    box = create(monsite)
    svc.set_autoreply(
        monsite.actor,
        box,
        enabled=True,
        message="I'm currently not available",
        interval=timedelta(minutes=10),
        start=date(2099, 9, 9),
        end=date(2099, 9, 19),
    )
    box.refresh_from_db()
    assert (box.autoreply_interval, box.autoreply_start, box.autoreply_end) == (
        600,
        date(2099, 9, 9),
        date(2099, 9, 19),
    )
    with pytest.raises(ValidationError, match="end date is before"):
        svc.set_autoreply(monsite.actor, box, enabled=True, start=date(2099, 9, 20))
    fresh = create(monsite)
    with pytest.raises(ValidationError, match="Write the automatic reply"):
        svc.set_autoreply(monsite.actor, fresh, enabled=True, message="")


def test_mailbox_user_self_service_limits(monsite: Customer) -> None:
    box = create(monsite)
    me = Actor.for_mailbox(box)
    assert me.role == "mailbox"
    svc.set_forwarding(me, box, ["monsite@gmail.com"], keep=True)
    svc.set_password(me, box, "Y3t-An0ther-Pass")
    with pytest.raises(PermissionDeniedError):
        svc.modify_mailbox(me, box, quota=None)
    with pytest.raises(PermissionDeniedError):
        svc.modify_mailbox(me, box, login_disabled=False)
    other = create(monsite)
    with pytest.raises(NotFoundError):
        svc.modify_mailbox(me, other, real_name="hacked")


def test_owner_mailbox_cannot_be_deleted_alone(monsite: Customer) -> None:
    with pytest.raises(ConflictError, match="owner's mailbox"):
        svc.delete_mailboxes(monsite.actor, [monsite.owner])


def test_delete_selected_mailboxes(monsite: Customer) -> None:
    one, two = create(monsite, addresses=["info"]), create(monsite)
    assert svc.delete_mailboxes(monsite.actor, [one, two]) == ["monsite0001", "monsite0002"]
    assert not Address.objects.filter(local_part="info").exists()
    assert limits.usage(monsite.domain).additional_mailboxes == 10


def test_hash_is_dovecot_argon2id_with_parallelism_one(monsite: Customer) -> None:
    stored = monsite.owner.password_hash
    assert stored.startswith("{ARGON2ID}$argon2id$v=19$") and ",p=1$" in stored
    assert passwords.verify_password(stored, monsite.password)


def test_an_automatic_reply_that_already_ended_is_refused(monsite: Customer) -> None:
    """Issue 16, item 4: it was saved silently, and never sent."""
    box = create(monsite)
    yesterday = timezone.localdate() - timedelta(days=1)
    with pytest.raises(ValidationError, match="is already past") as refused:
        svc.set_autoreply(monsite.actor, box, enabled=True, message="Away", end=yesterday)
    assert refused.value.field == "autoreply_end"
    box.refresh_from_db()
    assert not box.autoreply_enabled
    # Turned off, the same dates may stay; and a reply that ended long ago does not
    # stop other changes to the mailbox.
    svc.set_autoreply(monsite.actor, box, enabled=False, message="Away", end=yesterday)
    Mailbox.objects.filter(pk=box.pk).update(autoreply_enabled=True)
    box.refresh_from_db()
    svc.set_forwarding(monsite.actor, box, ["monsite@gmail.com"], keep=True)


def test_one_reply_per_sender_per_day_unless_chosen_otherwise(monsite: Customer) -> None:
    """Issue 16, item 4: the minimum interval defaulted to "No minimum"."""
    box = create(monsite)
    assert box.autoreply_interval == svc.DEFAULT_AUTOREPLY_INTERVAL == 86400
    assert monsite.owner.autoreply_interval == 86400
    svc.set_autoreply(monsite.actor, box, enabled=True, message="Away", interval=None)
    box.refresh_from_db()
    assert box.autoreply_interval is None  # chosen: no minimum
