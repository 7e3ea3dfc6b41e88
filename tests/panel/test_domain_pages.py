"""Chapters 3 and 5 in the panel: Virtual Server Information and Details, sub-servers,
domain aliases, the domain switcher, the domain's audit log and its DNS records."""

from __future__ import annotations

from courriel.accounts.models import Domain, DomainAlias
from courriel.accounts.services.dns import dns_records
from courriel.accounts.services.domains import add_domain_alias, create_domain
from courriel.audit.models import AuditEntry
from tests.fixtures.accounts import Customer, make_customer
from tests.fixtures.panel import Browser, signed_in


def test_chapter_3_virtual_server_information(owner_browser: Browser, monsite: Customer) -> None:
    page = owner_browser.text("/d/monsite.be/")
    for fact in (
        "Logged in as",
        "monsite",
        "Courriel version",
        "0.1.0",
        "Sub-servers",
        "1 out of 5",
        "Mail aliases",
        "Disk usage and quota",
        "0 bytes out of 30\u00a0GB",
        "Recommended",
    ):
        assert fact in page, fact


def test_chapter_5_virtual_server_details(owner_browser: Browser, monsite: Customer) -> None:
    page = owner_browser.text("/d/monsite.be/details/")
    for fact in (
        "Administration group",
        "Created on",
        "by test-provider",
        "Account plan",
        "Recommended",
        "IP address",
        "Home directory",
        "/monsite.be</code>",
        "Description",
        "Contact email",
        "contact@monsite.be",
        "Quotas and limits",
        "Enabled features",
        "Mail for domain",
        "Spam filtering",
    ):
        assert fact in page, fact
    # The owner may change the description and contact, not the plan or server.
    assert 'name="description"' in page and 'name="plan"' not in page
    assert 'name="server"' not in page


def test_owner_changes_details_and_the_change_is_audited(
    owner_browser: Browser, monsite: Customer
) -> None:
    response = owner_browser.post(
        "/d/monsite.be/details/",
        {
            "description": "Monsite asbl",
            "contact_email": "info@monsite.be",
            "features": ["mail", "dns", "spam"],
            "plan": "large",  # not a field for the owner: ignored
        },
    )
    assert response.status_code == 302
    domain = Domain.objects.get(name="monsite.be")
    assert domain.description == "Monsite asbl" and domain.features == ["mail", "dns", "spam"]
    assert domain.plan is not None and domain.plan.name == "recommended"
    entry = AuditEntry.objects.filter(action="domain.modify").first()
    assert entry is not None and entry.actor == "monsite"
    bad = owner_browser.post(
        "/d/monsite.be/details/", {"description": "x", "contact_email": "not an address"}
    )
    assert "is not an e-mail address" in bad.content.decode()
    assert Domain.objects.get(name="monsite.be").description == "Monsite asbl"


def test_provider_changes_the_plan_unless_the_domain_does_not_fit(
    provider_browser: Browser, monsite: Customer
) -> None:
    page = provider_browser.text("/d/monsite.be/details/")
    assert 'name="plan"' in page and 'name="server"' in page
    base = {"description": "Monsite", "contact_email": "", "features": ["mail"]}
    moved = provider_browser.post(
        "/d/monsite.be/details/",
        {**base, "plan": "large", "server": "moses", "ip_address": "62.58.108.13"},
    )
    assert moved.status_code == 302
    domain = Domain.objects.get(name="monsite.be")
    assert domain.plan.name == "large" and domain.server.name == "moses"  # type: ignore[union-attr]
    assert domain.ip_address == "62.58.108.13"
    create_domain(monsite.actor, "autre.be", parent=domain)
    refused = provider_browser.post(
        "/d/monsite.be/details/", {**base, "plan": "simple", "server": "moses"}
    )
    assert "does not fit plan simple" in refused.content.decode()
    assert Domain.objects.get(name="monsite.be").plan.name == "large"  # type: ignore[union-attr]


def test_create_sub_server_within_the_plan(owner_browser: Browser, monsite: Customer) -> None:
    page = owner_browser.text("/d/monsite.be/subservers/new/")
    assert "Virtual servers used: 1 out of 5" in page
    response = owner_browser.post(
        "/d/monsite.be/subservers/new/", {"name": "monsite.eu", "description": "EU"}
    )
    assert response.status_code == 302 and response["Location"] == "/d/monsite.eu/"
    sub = Domain.objects.get(name="monsite.eu")
    assert sub.parent_id == monsite.domain.pk and sub.owner_id == monsite.owner.pk
    assert "2 out of 5" in owner_browser.text("/d/monsite.be/")
    taken = owner_browser.post("/d/monsite.be/subservers/new/", {"name": "monsite.eu"})
    assert "already exists" in taken.content.decode()
    bad = owner_browser.post("/d/monsite.be/subservers/new/", {"name": "not a domain"})
    assert "is not a valid domain name" in bad.content.decode()


def test_sub_server_limit(provider, servers) -> None:  # type: ignore[no-untyped-def]
    small = make_customer(provider, "petit.be", plan="simple")
    browser = signed_in(small.owner)
    refused = browser.post("/d/petit.be/subservers/new/", {"name": "petit.eu"})
    assert "allows 1 virtual servers" in refused.content.decode()
    assert not Domain.objects.filter(name="petit.eu").exists()


def test_domain_switcher_lists_the_owners_servers_and_keeps_the_page(
    owner_browser: Browser, monsite: Customer, autre: Customer
) -> None:
    assert 'id="id_switch_domain"' not in owner_browser.text("/d/monsite.be/")  # only one
    create_domain(monsite.actor, "monsite.eu", parent=monsite.domain)
    page = owner_browser.text("/d/monsite.be/users/")
    assert 'id="id_switch_domain"' in page and 'value="monsite.eu"' in page
    assert "autresite.be" not in page
    switched = owner_browser.get("/switch/", {"domain": "monsite.eu", "section": "users"})
    assert switched["Location"] == "/d/monsite.eu/users/"
    odd = owner_browser.get("/switch/", {"domain": "monsite.eu", "section": "logout"})
    assert odd["Location"] == "/d/monsite.eu/"
    assert owner_browser.get("/switch/", {"domain": "autresite.be"}).status_code == 404


def test_domain_aliases_added_and_deleted_after_confirmation(
    owner_browser: Browser, monsite: Customer
) -> None:
    added = owner_browser.post(
        "/d/monsite.be/domain-aliases/add/", {"name": "monsite.nl"}, follow=True
    )
    assert "Domain alias monsite.nl added." in added.content.decode()
    assert DomainAlias.objects.filter(name="monsite.nl", domain=monsite.domain).exists()
    again = owner_browser.post(
        "/d/monsite.be/domain-aliases/add/", {"name": "monsite.nl"}, follow=True
    )
    assert "already a domain alias" in again.content.decode()
    ask = owner_browser.post("/d/monsite.be/domain-aliases/delete/", {"name": "monsite.nl"})
    assert "Delete domain alias" in ask.content.decode()
    assert DomainAlias.objects.filter(name="monsite.nl").exists()
    owner_browser.post(
        "/d/monsite.be/domain-aliases/delete/", {"name": "monsite.nl", "confirm": "yes"}
    )
    assert not DomainAlias.objects.filter(name="monsite.nl").exists()


def test_sub_servers_are_deleted_by_their_owner_but_not_the_customer_domain(
    owner_browser: Browser, provider_browser: Browser, monsite: Customer
) -> None:
    create_domain(monsite.actor, "monsite.eu", parent=monsite.domain)
    assert "Delete virtual server" in owner_browser.text("/d/monsite.eu/details/")
    assert "Delete virtual server" not in owner_browser.text("/d/monsite.be/details/")
    assert owner_browser.post("/d/monsite.be/delete/", {"confirm": "yes"}).status_code == 404
    ask = owner_browser.post("/d/monsite.eu/delete/")
    assert (
        "monsite.eu" in ask.content.decode() and Domain.objects.filter(name="monsite.eu").exists()
    )
    done = owner_browser.post("/d/monsite.eu/delete/", {"confirm": "yes"})
    assert done["Location"] == "/d/monsite.be/"
    assert not Domain.objects.filter(name="monsite.eu").exists()
    gone = provider_browser.post("/d/monsite.be/delete/", {"confirm": "yes"})
    assert gone["Location"] == "/provider/domains/"
    assert not Domain.objects.filter(name="monsite.be").exists()


def test_the_domain_audit_log_shows_this_customer_only(
    owner_browser: Browser, monsite: Customer, autre: Customer
) -> None:
    page = owner_browser.text("/d/monsite.be/audit/")
    assert "domain.create" in page and "monsite.be" in page
    assert "autresite.be" not in page
    filtered = owner_browser.text("/d/monsite.be/audit/", action="mailbox")
    assert "domain.create" not in filtered


def test_dns_records_to_publish(owner_browser: Browser, monsite: Customer) -> None:
    add_domain_alias(monsite.actor, monsite.domain, "monsite.eu")
    details = owner_browser.text("/d/monsite.be/details/")
    assert 'href="/d/monsite.be/dns/"' in details  # from the details and from the menu
    page = owner_browser.text("/d/monsite.be/dns/")
    assert 'aria-current="page">DNS records' in page
    for record in dns_records(monsite.domain):
        assert record.value.replace('"', "&quot;") in page
        assert record.zone_line().replace('"', "&quot;") in page
    for text in (
        "10 maximusconfessor.all2all.org.",
        "courriel._domainkey.monsite.be",
        "_dmarc.monsite.be",
        "mail for the domain comes to us",
        "alias of monsite.be",
    ):
        assert text in page, text
    french = owner_browser.get("/d/monsite.be/dns/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Enregistrements DNS" in french and "le courrier du domaine arrive chez nous" in french
    assert owner_browser.get("/d/autresite.be/dns/").status_code == 404
