"""Tenant isolation in the panel: owner A asks for every page with the names of owner
B's objects (GET and POST, confirmed), and gets "not found" without anything changing;
a mailbox user asks for every owner and provider page of their own domain, likewise.

The list of pages comes from the URL configuration itself, so a new page is tested
the day it is added."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import URLPattern, reverse

from courriel.accounts.models import (
    Address,
    Alias,
    AppPassword,
    Domain,
    DomainAlias,
    HostingServer,
    Mailbox,
    Plan,
    TwoFactor,
)
from courriel.accounts.permissions import Actor
from courriel.accounts.services.aliases import create_alias
from courriel.accounts.services.domains import add_domain_alias, create_domain
from courriel.accounts.services.mailboxes import create_mailbox
from courriel.accounts.services.twofactor import create_app_password
from courriel.api.models import ApiToken
from courriel.api.tokens import create_token
from courriel.audit.models import AuditEntry
from courriel.greylist.models import DomainGreylisting, MailboxGreylisting, WhitelistEntry
from courriel.panel import urls as panel_urls
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.panel import Browser, signed_in

# Pages anyone signed in may open (about themselves).
OWN_PAGES = {
    "home",
    "login",
    "logout",
    "language",
    "me",
    "me-password",
    "me-forwarding",
    "me-autoreply",
    "me-mobileconfig",
    "me-download",
    "tokens",
    "impersonate-stop",
    "password-strength",
    "login-code",
    "security",
    "security-enrol",
    "security-confirm",
    "security-off",
    "security-recovery-codes",
    "security-app-password-new",
}


def routes() -> list[tuple[str, list[str]]]:
    found = []
    for pattern in panel_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        found.append((str(pattern.name), list(pattern.pattern.converters)))  # type: ignore[attr-defined]
    return found


def snapshot() -> tuple[Any, ...]:
    """Everything a request could change."""
    return (
        list(Domain.objects.order_by("pk").values()),
        list(Mailbox.objects.order_by("pk").values()),
        list(Address.objects.order_by("pk").values()),
        list(Alias.objects.order_by("pk").values()),
        list(DomainAlias.objects.order_by("pk").values()),
        list(ApiToken.objects.order_by("pk").values("pk", "key_hash")),
        list(Plan.objects.order_by("pk").values()),
        list(HostingServer.objects.order_by("pk").values()),
        list(DomainGreylisting.objects.order_by("pk").values()),
        list(MailboxGreylisting.objects.order_by("pk").values()),
        list(WhitelistEntry.objects.order_by("pk").values()),
        list(TwoFactor.objects.order_by("pk").values()),
        list(AppPassword.objects.order_by("pk").values()),
        AuditEntry.objects.count(),
    )


# A queue entry id, for the provider's queue pages (queued mail is the provider's only).
QUEUE_ENTRY = "0006123456789ABC1234000"

# Plausible form data, so that a request fails for the right reason (not found), not
# because the form was empty.
POST_DATA = {
    "selected": ["autresite", "autresite0001", "secret", "abuse"],
    "confirm": "yes",
    "name": "secret",
    "description": "hacked",
    "contact_email": "hacker@example.org",
    "features": ["mail"],
    "password": "N3w-Pass-phrase!",
    "password_again": "N3w-Pass-phrase!",
    "password_0": "value",
    "password_1": "N3w-Pass-phrase!",
    "primary_local_part": "autresite0001",
    "login": "autresite0001",
    "real_name": "Hacked",
    "quota_0": "none",
    "primary_enabled": "True",
    "deliver_normally": "on",
    "name_mode": "one",
    "everyone": "on",
    "text": f"hacked:Hacked:{STRONG}",
    "kind": "client",
    "value": "10.0.0.0/8",
    "delay": "0",
}


@pytest.fixture
def b_objects(autre: Customer) -> dict[str, Any]:
    mailbox = create_mailbox(autre.actor, autre.domain, password=STRONG, real_name="B").mailbox
    create_alias(autre.actor, autre.domain, "secret", forward_to=["b@example.org"])
    add_domain_alias(autre.actor, autre.domain, "autresite.eu")
    create_domain(autre.actor, "autresite.nl", parent=autre.domain)
    token = create_token(autre.actor, "b's token").token
    app = create_app_password(Actor.for_mailbox(mailbox), mailbox, "b's phone", None)
    return {"mailbox": mailbox, "token": token, "app_password": app.app_password}


def b_values(name: str, kwargs: list[str], b_objects: dict[str, Any]) -> dict[str, Any]:
    values = {
        "domain": "autresite.be",
        "login": b_objects["mailbox"].login,
        "token_id": b_objects["token"].pk,
        "app_password_id": b_objects["app_password"].pk,
        "name": "secret",
        "entry_id": QUEUE_ENTRY,
    }
    if name.startswith("provider-"):
        values["name"] = {
            "provider-server": "maximusconfessor",
            "provider-server-delete": "maximusconfessor",
            "provider-plan": "recommended",
            "provider-plan-delete": "recommended",
        }.get(name, "autresite.be")
    return {key: values[key] for key in kwargs}


def test_owner_a_finds_nothing_of_owner_b(
    monsite: Customer, autre: Customer, b_objects: dict[str, Any]
) -> None:
    browser = signed_in(monsite.owner)
    before = snapshot()
    checked = 0
    for name, kwargs in routes():
        if name in OWN_PAGES:
            continue
        url = reverse(name, kwargs=b_values(name, kwargs, b_objects))
        for method in ("get", "post"):
            response = getattr(browser, method)(url, POST_DATA if method == "post" else None)
            assert response.status_code in (404, 405), (method, url, response.status_code)
            body = response.content.decode().replace(url, "")  # the page names its own URL
            assert "autresite0001" not in body and "b@example.org" not in body
            checked += 1
    assert snapshot() == before
    assert checked > 60


def test_owner_a_cannot_reach_b_objects_through_a_own_domain(
    monsite: Customer, autre: Customer, b_objects: dict[str, Any]
) -> None:
    """The domain is A's, the mailbox or alias is B's."""
    browser = signed_in(monsite.owner)
    before = snapshot()
    login = b_objects["mailbox"].login
    for url in (
        f"/d/monsite.be/user/{login}/",
        f"/d/monsite.be/user/{login}/generate-password/",
        f"/d/monsite.be/user/{login}/mobileconfig",
        f"/d/monsite.be/password/{login}/",
        "/d/monsite.be/alias/secret/",
        "/d/monsite.be/users/delete/",
        "/d/monsite.be/aliases/delete/",
    ):
        for method in ("get", "post"):
            response = getattr(browser, method)(url, POST_DATA if method == "post" else None)
            assert response.status_code in (404, 405), (method, url, response.status_code)
    # Aliases of A's domain cannot deliver to B's mailboxes either.
    refused = browser.post(
        "/d/monsite.be/aliases/new/",
        {"name_mode": "one", "name": "steal", "deliver": "on", "mailboxes": login},
    )
    assert "No mailbox" in refused.content.decode()
    # Nor may a sub-server take a name B already has, nor learn that B has it.
    for name in ("autresite.nl", "autresite.eu", "www.autresite.be"):
        taken = browser.post("/d/monsite.be/subservers/new/", {"name": name}).content.decode()
        assert f"{name} is not available" in taken and "already" not in taken
    # B's tokens are not A's to see or revoke.
    assert b_objects["token"].prefix not in browser.text("/tokens/")
    assert snapshot() == before


def test_a_mailbox_user_finds_no_owner_or_provider_page(
    monsite: Customer, info: Mailbox, b_objects: dict[str, Any]
) -> None:
    browser = signed_in(info)
    before = snapshot()
    own = {
        "domain": "monsite.be",
        "login": info.login,
        "token_id": b_objects["token"].pk,
        "app_password_id": b_objects["app_password"].pk,
        "name": "abuse",
        "entry_id": QUEUE_ENTRY,
    }
    for name, kwargs in routes():
        if name in OWN_PAGES:
            continue
        values = {key: own[key] for key in kwargs}
        if name.startswith("provider-"):
            values = b_values(name, kwargs, b_objects)
        url = reverse(name, kwargs=values)
        for method in ("get", "post"):
            response = getattr(browser, method)(url, POST_DATA if method == "post" else None)
            assert response.status_code in (404, 405), (method, url, response.status_code)
    assert snapshot() == before


def test_signed_out_visitors_are_sent_to_the_login_page(
    browser: Browser, monsite: Customer, b_objects: dict[str, Any]
) -> None:
    before = snapshot()
    for name, kwargs in routes():
        if name in {"login", "language", "logout", "impersonate-stop"}:
            continue
        url = reverse(name, kwargs=b_values(name, kwargs, b_objects))
        response = browser.get(url)
        assert response.status_code in (302, 405), (url, response.status_code)
        if response.status_code == 302:
            assert response["Location"].startswith("/login/"), url
    assert snapshot() == before
