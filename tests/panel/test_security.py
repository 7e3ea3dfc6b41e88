"""Security properties of the panel: headers, cookies, CSRF on every form, a strict
Content-Security-Policy that the templates respect, no stored password readable."""

from __future__ import annotations

import re
from pathlib import Path

from django.test import Client
from django.urls import reverse

import courriel.panel
from courriel.accounts.models import Mailbox
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.panel import Browser
from tests.panel.test_isolation import POST_DATA, QUEUE_ENTRY, routes

TEMPLATES = Path(courriel.panel.__file__).parent / "templates"


def test_security_headers(owner_browser: Browser, monsite: Customer) -> None:
    response = owner_browser.get("/d/monsite.be/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "max-age=" in response["Strict-Transport-Security"]
    plain = Client().get("/login/")  # no HSTS over plain HTTP (the header means nothing)
    assert "Strict-Transport-Security" not in plain


def test_cookies_are_secure_httponly_and_samesite(browser: Browser, monsite: Customer) -> None:
    page = browser.get("/login/")
    csrf = page.cookies["csrftoken"]
    assert csrf["secure"] and csrf["httponly"] and csrf["samesite"] == "Strict"
    signed = browser.post(
        "/login/", {"username": "monsite", "password": monsite.password, "remember": "1"}
    )
    session = signed.cookies["courriel_session"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    language = browser.post("/language/", {"language": "fr"}).cookies["courriel_language"]
    assert language["secure"] and language["httponly"] and language["samesite"] == "Lax"


def test_every_form_is_protected_against_csrf(
    monsite: Customer, info: Mailbox, admin: object
) -> None:
    """A forged POST to any page, by a signed-in owner or provider, is refused."""
    from tests.fixtures.panel import MAILBOX_BACKEND

    owner = Client(enforce_csrf_checks=True)
    owner.force_login(monsite.owner, backend=MAILBOX_BACKEND)
    provider = Client(enforce_csrf_checks=True)
    provider.force_login(admin.user, backend="django.contrib.auth.backends.ModelBackend")  # type: ignore[attr-defined]
    values = {
        "domain": "monsite.be",
        "login": "monsite0001",
        "name": "abuse",
        "token_id": 1,
        "app_password_id": 1,
        "entry_id": QUEUE_ENTRY,
    }
    provider_values = {"name": "recommended"}
    checked = 0
    for name, kwargs in routes():
        client = provider if name.startswith("provider-") else owner
        pool = provider_values if name.startswith("provider-") else values
        url = reverse(name, kwargs={key: pool.get(key, values.get(key)) for key in kwargs})
        response = client.post(url, POST_DATA, secure=True)
        assert response.status_code == 403, (url, response.status_code)
        checked += 1
    assert checked == len(routes())
    assert Mailbox.objects.get(login="monsite0001").real_name == "Info"


def test_templates_have_no_inline_script_or_style() -> None:
    """The Content-Security-Policy forbids them; a template that used one would break."""
    offenders = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        if re.search(r"\sstyle=|<style|\son[a-z]+=|javascript:", text):
            offenders.append(path.name)
        for script in re.findall(r"<script[^>]*>", text):
            if "src=" not in script:
                offenders.append(path.name)
    assert offenders == []


def test_no_page_shows_a_stored_password(owner_browser: Browser, info: Mailbox) -> None:
    secret_part = info.password_hash.rsplit("$", 1)[-1]
    for url in (
        "/d/monsite.be/users/",
        "/d/monsite.be/user/monsite0001/",
        "/d/monsite.be/password/monsite0001/",
        "/d/monsite.be/audit/",
        "/me/",
    ):
        page = owner_browser.text(url)
        assert secret_part not in page and STRONG not in page and "argon2" not in page, url
    api = owner_browser.get("/d/monsite.be/user/monsite0001/mobileconfig")
    assert secret_part.encode() not in api.content


def test_requests_with_nul_characters_are_refused(
    owner_browser: Browser, monsite: Customer
) -> None:
    assert owner_browser.get("/d/monsite.be/user/a%00b/").status_code == 400
    assert owner_browser.get("/d/monsite.be/users/", {"q": "a\x00b"}).status_code == 400
