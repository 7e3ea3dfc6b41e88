"""Issue 11, item 1 in the panel: *Create Virtual Server* and *Add domain alias* with a
name the customer does not control give a pending name that takes no mail, with the
DNS record that proves control, a *Check now* button, and the provider's *Approve*."""

from __future__ import annotations

from courriel.accounts.models import Domain, DomainAlias
from courriel.accounts.resolution import resolve
from courriel.accounts.services import ownership
from tests.fixtures.accounts import Customer
from tests.fixtures.nsd import PrivateNSD
from tests.fixtures.panel import Browser


def test_create_virtual_server_gmail_com_is_pending(
    owner_browser: Browser, monsite: Customer
) -> None:
    done = owner_browser.post("/d/monsite.be/subservers/new/", {"name": "gmail.com"}, follow=True)
    page = done.content.decode()
    sub = Domain.objects.get(name="gmail.com")
    assert sub.pending
    record, value = ownership.verification_record(sub)
    assert "Waiting for proof of control" in page
    assert record in page and value in page
    assert "Approve" not in page  # the provider's button only
    assert resolve("postmaster@gmail.com").status == "not_local"
    # The owner cannot approve it by posting to the provider's address.
    assert owner_browser.post("/d/gmail.com/approve/").status_code == 404
    assert Domain.objects.get(name="gmail.com").pending


def test_subdomains_of_the_owners_domain_need_no_proof(
    owner_browser: Browser, monsite: Customer
) -> None:
    page = owner_browser.post(
        "/d/monsite.be/subservers/new/", {"name": "shop.monsite.be"}, follow=True
    ).content.decode()
    assert "Waiting for proof of control" not in page
    assert not Domain.objects.get(name="shop.monsite.be").pending


def test_another_customers_subdomain_is_refused_in_the_form(
    owner_browser: Browser, monsite: Customer, autre: Customer
) -> None:
    page = owner_browser.post(
        "/d/monsite.be/subservers/new/", {"name": "www.autresite.be"}
    ).content.decode()
    assert "www.autresite.be is not available" in page
    assert not Domain.objects.filter(name="www.autresite.be").exists()
    added = owner_browser.post(
        "/d/monsite.be/domain-aliases/add/", {"name": "autresite.be"}, follow=True
    ).content.decode()
    assert "autresite.be is not available" in added


def test_check_now_proves_control_through_dns(
    owner_browser: Browser, monsite: Customer, nsd: PrivateNSD
) -> None:
    owner_browser.post("/d/monsite.be/domain-aliases/add/", {"name": "outlook.com"})
    alias = DomainAlias.objects.get(name="outlook.com")
    record, value = ownership.verification_record(alias)
    details = owner_browser.text("/d/monsite.be/details/")
    assert "pending" in details and record in details and value in details
    nsd.zone("outlook.com", ["@ IN A 127.0.0.1"])
    nsd.start()
    missing = owner_browser.post(
        "/d/monsite.be/verify/", {"name": "outlook.com"}, follow=True
    ).content.decode()
    assert "No TXT record" in missing and record in missing
    assert DomainAlias.objects.get(name="outlook.com").pending
    nsd.zone("outlook.com", [nsd.txt("_courriel-verify", value, ttl=1)])
    nsd.reload()
    import time

    deadline = time.monotonic() + 15
    while DomainAlias.objects.get(name="outlook.com").pending:
        assert time.monotonic() < deadline, "the record was never seen"
        time.sleep(0.3)
        owner_browser.post("/d/monsite.be/verify/", {"name": "outlook.com"})
    assert resolve("postmaster@outlook.com").status == "deliver"


def test_the_provider_approves_from_the_domain_page(
    provider_browser: Browser, owner_browser: Browser, monsite: Customer
) -> None:
    owner_browser.post("/d/monsite.be/subservers/new/", {"name": "monsite.nl"})
    owner_browser.post("/d/monsite.be/domain-aliases/add/", {"name": "monsite.eu"})
    listing = provider_browser.text("/provider/domains/")
    assert "monsite.nl" in listing and "pending" in listing
    info = provider_browser.text("/d/monsite.nl/")
    assert "Approve" in info
    provider_browser.post("/d/monsite.nl/approve/")
    provider_browser.post("/d/monsite.be/approve/", {"name": "monsite.eu"})
    assert not Domain.objects.get(name="monsite.nl").pending
    assert not DomainAlias.objects.get(name="monsite.eu").pending
    assert "Waiting for proof of control" not in owner_browser.text("/d/monsite.nl/")
