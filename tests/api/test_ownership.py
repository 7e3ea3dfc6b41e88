"""Issue 11, item 1 through the API, as it was found: with the owner's own token,
gmail.com as a sub-server with a catch-all, and outlook.com as a domain alias."""

from __future__ import annotations

from courriel.accounts.resolution import resolve
from tests.fixtures.accounts import Customer
from tests.fixtures.api import Api
from tests.fixtures.nsd import PrivateNSD


def test_a_customer_cannot_capture_gmail_com(owner_api: Api, monsite: Customer) -> None:
    status, created = owner_api.post("/domains", {"name": "gmail.com", "parent": "monsite.be"})
    assert status == 201
    assert created["domain"]["verified"] is False
    verification = created["domain"]["verification"]
    assert verification["record"] == "_courriel-verify.gmail.com"
    assert verification["value"]
    status, _ = owner_api.post(
        "/domains/gmail.com/aliases", {"name": "*", "mailboxes": ["monsite"]}
    )
    assert status == 201
    assert resolve("anyone@gmail.com").status == "not_local"
    status, listed = owner_api.get("/domains/gmail.com")
    assert status == 200 and listed["verified"] is False


def test_a_customer_cannot_capture_outlook_com(owner_api: Api, monsite: Customer) -> None:
    status, alias = owner_api.post("/domains/monsite.be/domain-aliases", {"name": "outlook.com"})
    assert status == 201 and alias["verified"] is False
    assert alias["verification"]["record"] == "_courriel-verify.outlook.com"
    assert resolve("postmaster@outlook.com").status == "not_local"
    assert resolve("ceo@outlook.com").status == "not_local"
    status, listed = owner_api.get("/domains/monsite.be/domain-aliases")
    assert listed == [alias]


def test_another_customers_subdomain_is_refused(
    owner_api: Api, monsite: Customer, autre: Customer
) -> None:
    status, refused = owner_api.post(
        "/domains", {"name": "www.autresite.be", "parent": "monsite.be"}
    )
    assert status in (403, 409) and "not available" in refused["detail"]
    status, refused = owner_api.post("/domains/monsite.be/domain-aliases", {"name": "autresite.be"})
    assert status == 409 and "not available" in refused["detail"]
    status, refused = owner_api.post("/domains", {"name": "co.uk", "parent": "monsite.be"})
    assert status == 400 and "public suffix" in refused["detail"]


def test_verify_and_approve_routes(
    owner_api: Api, provider_api: Api, monsite: Customer, nsd: PrivateNSD
) -> None:
    _, created = owner_api.post("/domains", {"name": "monsite.fr", "parent": "monsite.be"})
    owner_api.post("/domains/monsite.be/domain-aliases", {"name": "monsite.eu"})
    nsd.zone(
        "monsite.fr", [nsd.txt("_courriel-verify", created["domain"]["verification"]["value"])]
    )
    nsd.zone("monsite.eu", ["@ IN A 127.0.0.1"])
    nsd.start()
    status, verified = owner_api.post("/domains/monsite.fr/verify")
    assert status == 200 and verified["verified"] is True and verified["verification"] is None
    status, missing = owner_api.post("/domains/monsite.be/domain-aliases/monsite.eu/verify")
    assert status == 400 and "_courriel-verify.monsite.eu" in missing["detail"]
    status, _ = owner_api.post("/domains/monsite.be/domain-aliases/monsite.eu/approve")
    assert status == 403
    status, approved = provider_api.post("/domains/monsite.be/domain-aliases/monsite.eu/approve")
    assert status == 200 and approved["verified"] is True
    status, approved = provider_api.post("/domains/monsite.fr/approve")
    assert status == 200 and approved["verified"] is True
    assert resolve("postmaster@monsite.eu").status == "deliver"
    assert resolve("postmaster@monsite.fr").status == "deliver"
