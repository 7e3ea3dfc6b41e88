"""The provider's pages: hosting servers, plans (chapter 4), every domain, creating a
customer's mail domain (chapter 1), viewing the panel as an owner, the audit log."""

from __future__ import annotations

from courriel.accounts.models import Domain, HostingServer, Plan
from courriel.accounts.services.mailboxes import authenticate, create_mailbox
from courriel.audit.models import AuditEntry
from tests.fixtures.accounts import STRONG, Customer, make_customer
from tests.fixtures.panel import Admin, Browser

GB = 1024**3


def test_overview_counts(provider_browser: Browser, monsite: Customer) -> None:
    page = provider_browser.text("/")
    assert "System Information" in page and "Customer domains" in page
    assert "test-provider created the virtual server monsite.be" in page  # latest changes


def test_hosting_servers_added_changed_and_deleted(provider_browser: Browser, servers) -> None:  # type: ignore[no-untyped-def]
    page = provider_browser.text("/provider/servers/")
    assert "maximusconfessor.all2all.org" in page and "https://moses.all2all.org:10000/" in page
    bad = provider_browser.post(
        "/provider/servers/", {"name": "x", "hostname": "x.example.org", "ip_address": "nope"}
    )
    assert "is not an IP address" in bad.content.decode()
    added = provider_browser.post(
        "/provider/servers/",
        {
            "name": "newton",
            "hostname": "newton.all2all.org",
            "ip_address": "62.58.108.14",
            "accepts_domains": "on",
        },
    )
    assert added.status_code == 302
    assert HostingServer.objects.get(name="newton").ip_address == "62.58.108.14"
    edited = provider_browser.post(
        "/provider/server/newton/",
        {"hostname": "newton.all2all.org", "ip_address": "", "admin_url": ""},
    )
    assert edited.status_code == 302
    newton = HostingServer.objects.get(name="newton")
    assert not newton.accepts_domains and newton.ip_address is None
    provider_browser.post("/provider/server/newton/delete/", {"confirm": "yes"})
    assert not HostingServer.objects.filter(name="newton").exists()
    assert provider_browser.get("/provider/server/newton/").status_code == 404


def test_a_server_with_domains_is_not_deleted(provider_browser: Browser, monsite: Customer) -> None:
    done = provider_browser.post(
        "/provider/server/maximusconfessor/delete/", {"confirm": "yes"}, follow=True
    )
    assert "still hosts 1 virtual servers" in done.content.decode()


def test_chapter_4_plans_table(provider_browser: Browser, plans) -> None:  # type: ignore[no-untyped-def]
    page = provider_browser.text("/provider/plans/")
    for value in ("Simple", "Recommended", "Large", "50\u00a0MB", "10\u00a0GB", "100\u00a0GB"):
        assert value in page, value
    for value in ("3\u00a0GB", "30\u00a0GB", "300\u00a0GB", "Unlimited"):
        assert value in page, value


def test_plans_are_edited_and_added(provider_browser: Browser, monsite: Customer) -> None:
    form = provider_browser.text("/provider/plan/recommended/")
    assert 'value="30G"' in form
    data = {
        "label": "Recommended",
        "web_quota_0": "value",
        "web_quota_1": "10G",
        "mail_quota_0": "value",
        "mail_quota_1": "40G",
        "max_mailboxes_0": "value",
        "max_mailboxes_1": "12",
        "max_servers_0": "value",
        "max_servers_1": "5",
        "max_domain_aliases_0": "none",
        "default_mailbox_quota_0": "value",
        "default_mailbox_quota_1": "3G",
    }
    assert provider_browser.post("/provider/plan/recommended/", data).status_code == 302
    plan = Plan.objects.get(name="recommended")
    assert plan.mail_quota == 40 * GB and plan.max_mailboxes == 12
    for _ in range(2):
        create_mailbox(monsite.actor, monsite.domain, password=STRONG)
    too_low = provider_browser.post("/provider/plan/recommended/", {**data, "max_mailboxes_1": "1"})
    assert "already has 2 mailboxes, more than 1" in too_low.content.decode()
    added = provider_browser.post(
        "/provider/plans/new/", {**data, "name": "business", "label": "Business"}
    )
    assert added.status_code == 302 and Plan.objects.filter(name="business").exists()
    bad = provider_browser.post(
        "/provider/plans/new/",
        {**data, "name": "odd", "default_mailbox_quota_1": "50G"},
    )
    assert "cannot be more than the plan" in bad.content.decode()
    used = provider_browser.post(
        "/provider/plan/recommended/delete/", {"confirm": "yes"}, follow=True
    )
    assert "is used by 1 virtual servers" in used.content.decode()


def test_all_domains_searched_and_paged(provider_browser: Browser, provider, servers) -> None:  # type: ignore[no-untyped-def]
    for n in range(55):
        make_customer(provider, f"client{n:02d}.be", plan="simple")
    first = provider_browser.text("/provider/domains/")
    assert "Page 1 of 2" in first and "client00.be" in first and "client54.be" not in first
    assert "client54.be" in provider_browser.text("/provider/domains/", page=2)
    found = provider_browser.text("/provider/domains/", q="client07")
    assert "client07.be" in found and "client08.be" not in found


def test_create_a_customer_mail_domain_and_show_the_password_once(
    provider_browser: Browser, servers
) -> None:  # type: ignore[no-untyped-def]
    page = provider_browser.text("/provider/domains/new/")
    assert "maximusconfessor" in page and "Recommended" in page
    response = provider_browser.post(
        "/provider/domains/new/",
        {
            "name": "monsite.be",
            "plan": "recommended",
            "server": "maximusconfessor",
            "password_0": "none",
            "contact_email": "monsite@monsite.be",
            "description": "Monsite",
        },
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    body = response.content.decode()
    for fact in (
        "The following mail domain has been set up successfully:",
        "Domain name",
        "Hosting server",
        "maximusconfessor.all2all.org",
        "Administration login",
        "Administration password",
        "https://maximusconfessor.all2all.org:10000/",
        "SMTP server (sending)",
        "POP3 server (receiving)",
    ):
        assert fact in body, fact
    password = body.split('<code class="secret-value">')[1].split("</code>")[0]
    assert authenticate("monsite", password).ok
    assert Domain.objects.get(name="monsite.be").plan.name == "recommended"  # type: ignore[union-attr]
    again = provider_browser.post(
        "/provider/domains/new/",
        {"name": "monsite.be", "plan": "simple", "server": "moses", "password_0": "none"},
    )
    assert "already exists" in again.content.decode()
    bad = provider_browser.post(
        "/provider/domains/new/",
        {"name": "monsite", "plan": "simple", "server": "moses", "password_0": "none"},
    )
    assert "is not a valid domain name" in bad.content.decode()


def test_view_as_the_owner_is_marked_audited_and_reversible(
    browser: Browser, admin: Admin, monsite: Customer
) -> None:
    browser.force_login(admin.user, backend="django.contrib.auth.backends.ModelBackend")
    response = browser.post("/provider/domain/monsite.be/impersonate/")
    assert response["Location"] == "/d/monsite.be/"
    page = browser.text("/d/monsite.be/")
    assert "You are looking at the panel as" in page and "Back to the provider view" in page
    assert "admin as monsite" in page and "Server owner" in page
    assert browser.get("/provider/domains/").status_code == 404  # an owner's view, really
    assert browser.get("/tokens/").status_code == 404
    browser.post("/d/monsite.be/details/", {"description": "changed by support"})
    entry = AuditEntry.objects.filter(action="domain.modify").first()
    assert entry is not None and entry.actor == "admin as monsite"
    assert AuditEntry.objects.filter(action="panel.impersonate", target="monsite").exists()
    back = browser.post("/provider/impersonate/stop/")
    assert back["Location"] == "/provider/domains/"
    assert "You are looking at the panel as" not in browser.text("/provider/domains/")
    assert AuditEntry.objects.filter(action="panel.impersonate_end").exists()


def test_audit_log_filters(provider_browser: Browser, monsite: Customer, autre: Customer) -> None:
    page = provider_browser.text("/provider/audit/")
    assert "monsite.be" in page and "autresite.be" in page
    only = provider_browser.text("/provider/audit/", domain="autresite")
    assert "autresite.be" in only and ">monsite.be<" not in only


def test_owners_and_users_find_no_provider_page(
    owner_browser: Browser, info_browser: Browser, monsite: Customer
) -> None:
    for url in (
        "/provider/servers/",
        "/provider/plans/",
        "/provider/plan/simple/",
        "/provider/domains/",
        "/provider/domains/new/",
        "/provider/audit/",
    ):
        assert owner_browser.get(url).status_code == 404, url
        assert info_browser.get(url).status_code == 404, url
    assert owner_browser.post("/provider/domain/monsite.be/impersonate/").status_code == 404
