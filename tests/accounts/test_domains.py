"""Chapter 1, 3, 4 and 5: creating customer domains, sub-servers, domain aliases."""

from __future__ import annotations

import pytest

from courriel.accounts import passwords
from courriel.accounts.models import Address, Alias, Domain, DomainAlias, Mailbox
from courriel.accounts.permissions import Actor
from courriel.accounts.services import domains, limits
from courriel.accounts.services.aliases import alias_name
from courriel.audit.models import AuditEntry
from courriel.errors import ConflictError, LimitError, NotFoundError, ValidationError
from tests.fixtures.accounts import Customer


def test_new_domain_gets_owner_password_and_default_aliases(monsite: Customer) -> None:
    domain = monsite.domain
    assert domain.name == "monsite.be"
    assert monsite.owner.login == "monsite"
    assert domain.admin_group == "monsite"
    assert domain.server.name == "maximusconfessor"
    # A strong random password like the manual's OX2fqt5tf16f5Uc, stored only hashed.
    assert len(monsite.password) >= 15
    passwords.check_strength(monsite.password, "monsite")
    assert monsite.owner.password_hash.startswith("{ARGON2ID}$argon2id$")
    assert monsite.password not in monsite.owner.password_hash
    names = sorted(alias_name(a) for a in Alias.objects.filter(domain=domain))
    assert names == ["abuse", "hostmaster", "postmaster", "webmaster"]
    for alias in Alias.objects.filter(domain=domain):
        assert list(alias.mailboxes.all()) == [monsite.owner]
    assert AuditEntry.objects.filter(action="domain.create", target="monsite.be").exists()


def test_dashboard_figures_match_the_manual(monsite: Customer) -> None:
    used = limits.usage(monsite.domain)
    assert (used.servers, used.max_servers) == (1, 5)  # "1 out of 5"
    assert used.mail_quota == 30 * 1024**3  # "30 GB"
    assert used.additional_mailboxes == 10
    assert used.aliases == 4


def test_sub_servers_share_the_plan_and_count_against_it(monsite: Customer) -> None:
    for n in range(4):
        sub = domains.create_domain(monsite.actor, f"sub{n}.be", parent=monsite.domain).domain
        assert sub.parent == monsite.domain and sub.plan is None
        assert sub.effective_plan.name == "recommended"
        assert sub.owner == monsite.owner
    assert limits.usage(monsite.domain).servers == 5
    with pytest.raises(LimitError, match="5 virtual servers"):
        domains.create_domain(monsite.actor, "sub9.be", parent=monsite.domain)
    assert not Domain.objects.filter(name="sub9.be").exists()


def test_sub_server_aliases_point_to_the_parent_owner(monsite: Customer) -> None:
    sub = domains.create_domain(monsite.actor, "autre-nom.be", parent=monsite.domain).domain
    postmaster = Address.objects.get(domain=sub, local_part="postmaster").alias
    assert postmaster is not None and list(postmaster.mailboxes.all()) == [monsite.owner]


def test_only_the_provider_creates_customer_domains(monsite: Customer) -> None:
    with pytest.raises(Exception, match="Only the hosting provider"):
        domains.create_domain(monsite.actor, "other.be", plan="large")


def test_idn_domain_is_stored_as_a_label_and_shown_as_u_label(servers, provider: Actor) -> None:
    created = domains.create_domain(provider, "Bücher.BE", plan="simple")
    assert created.domain.name == "xn--bcher-kva.be"
    assert created.domain.display_name == "bücher.be"
    assert created.owner is not None and created.owner.login == "bucher"


def test_owner_login_falls_back_when_taken(servers, provider: Actor) -> None:
    first = domains.create_domain(provider, "monsite.be", plan="simple")
    second = domains.create_domain(provider, "monsite.com", plan="simple")
    assert first.owner.login == "monsite"  # type: ignore[union-attr]
    assert second.owner.login == "monsite-com"  # type: ignore[union-attr]


@pytest.mark.parametrize("bad", ["", "monsite", "-monsite.be", "mon site.be", "a..be", "x.123"])
def test_invalid_domain_names_are_refused_and_nothing_is_made(
    servers, provider: Actor, bad: str
) -> None:
    with pytest.raises(ValidationError):
        domains.create_domain(provider, bad, plan="simple")
    assert Domain.objects.count() == 0 and Mailbox.objects.count() == 0


def test_duplicate_domain_and_unknown_plan_or_server(monsite: Customer, provider: Actor) -> None:
    with pytest.raises(ConflictError, match="already exists"):
        domains.create_domain(provider, "MONSITE.be", plan="simple")
    with pytest.raises(NotFoundError, match="No plan named 'gold'"):
        domains.create_domain(provider, "new.be", plan="gold")
    with pytest.raises(NotFoundError, match="No hosting server"):
        domains.create_domain(provider, "new.be", plan="simple", server="atlantis")
    assert not Domain.objects.filter(name="new.be").exists()


def test_domain_aliases_and_name_clashes(monsite: Customer, autre: Customer) -> None:
    alias = domains.add_domain_alias(monsite.actor, monsite.domain, "monsite.eu")
    assert isinstance(alias, DomainAlias)
    with pytest.raises(ConflictError):
        domains.add_domain_alias(monsite.actor, monsite.domain, "autresite.be")
    with pytest.raises(ConflictError):
        domains.create_domain(Actor.system(), "monsite.eu", plan="simple")
    # Another customer cannot attach an alias to monsite.be.
    with pytest.raises(NotFoundError):
        domains.add_domain_alias(autre.actor, monsite.domain, "stolen.be")


def test_changing_to_a_smaller_plan_is_refused_when_it_does_not_fit(
    monsite: Customer, provider: Actor
) -> None:
    from courriel.accounts.services.mailboxes import create_mailbox

    for _ in range(2):
        create_mailbox(provider, monsite.domain, password="Str0ng-Enough!")
    with pytest.raises(LimitError, match="does not fit plan simple"):
        domains.modify_domain(provider, monsite.domain, plan="simple")
    monsite.domain.refresh_from_db()
    assert monsite.domain.plan.name == "recommended"  # type: ignore[union-attr]
    domains.modify_domain(provider, monsite.domain, plan="large")


def test_owner_may_edit_description_but_not_plan(monsite: Customer) -> None:
    domains.modify_domain(monsite.actor, monsite.domain, description="Mon site")
    with pytest.raises(Exception, match="Only the hosting provider"):
        domains.modify_domain(monsite.actor, monsite.domain, plan="large")


def test_deleting_a_domain_removes_everything_and_keeps_mail_aside(
    monsite: Customer, provider: Actor, django_capture_on_commit_callbacks
) -> None:
    from courriel.config import get_config
    from courriel.mailstore.layout import create_maildir

    config = get_config()
    maildir = monsite.owner.maildir_path(config.mail_root)
    create_maildir(maildir)
    (maildir / "new" / "1.msg").write_text("Subject: keep me\n\nhello\n")
    domains.create_domain(monsite.actor, "sub.be", parent=monsite.domain)
    with django_capture_on_commit_callbacks(execute=True):
        deleted = domains.delete_domain(provider, monsite.domain)
    assert sorted(deleted) == ["monsite.be", "sub.be"]
    assert not Domain.objects.exists() and not Mailbox.objects.exists()
    assert not Address.objects.exists() and not Alias.objects.exists()
    assert not maildir.exists()
    kept = list((config.data_dir / "deleted").glob("*-monsite.be-monsite/Maildir/new/1.msg"))
    assert len(kept) == 1 and "keep me" in kept[0].read_text()
