"""Password strength (issue 11, item 3): the four weak passwords that passed are refused
by the CLI, the panel and the API, with the reason in the user's language; passwords
built from the login, the domain or the real name are refused; generated ones always
pass; and the panel shows the server's verdict while typing."""

from __future__ import annotations

import json

import pytest
from django.utils import translation

from courriel.accounts.models import Mailbox
from courriel.accounts.passwords import assess, generate_password
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.api import Api
from tests.fixtures.panel import Browser
from tests.fixtures.processes import InProcess

WEAK = ["Password123!", "passwordpassword", "abcdefghijklmnop", "Monsite.be2026!"]


@pytest.mark.parametrize("weak", WEAK)
def test_the_weak_passwords_that_passed_are_refused(weak: str) -> None:
    strength = assess(weak, login="monsite0001", domain="monsite.be", real_name="Info")
    assert not strength.ok and strength.score < 3, (weak, strength)


@pytest.mark.parametrize(
    "password",
    ["Xq-monsite0001-Zr9!", "M0ns1te-Kw4rtz-Fl0p", "Dupontel-Vkx-22-Qq", "qzW-jeanne-RRtt-99"],
)
def test_passwords_built_from_the_login_domain_or_name_are_refused(password: str) -> None:
    strength = assess(
        password, login="monsite0001", domain="monsite.be", real_name="Jeanne Dupontel"
    )
    assert "built from the login, the domain name or your name" in strength.problem, password


def test_strong_passwords_and_every_generated_one_pass() -> None:
    for password in (STRONG, "N3w-Pass-phrase!", "correct horse battery staple"):
        assert assess(password, login="monsite0001", domain="monsite.be").ok, password
    for _ in range(50):
        generated = generate_password(login="monsite0001", domain="monsite.be", real_name="Info")
        assert assess(generated, login="monsite0001", domain="monsite.be", real_name="Info").ok


def test_the_reason_is_in_the_users_language() -> None:
    for language, expected in (
        ("en", "too easy to guess"),
        ("fr", "trop facile à deviner"),
        ("nl", "te makkelijk te raden"),
    ):
        with translation.override(language):
            assert expected in assess("Password123!").problem, language


def test_the_cli_refuses_them(cli: InProcess, monsite: Customer) -> None:
    for weak in WEAK:
        refused = cli("user", "create", "monsite.be", "--pass", weak, ok=False)
        assert refused.code == 65, weak
        assert "too easy to guess" in refused.err or "built from" in refused.err, weak
        refused = cli("user", "password", "monsite.be", "monsite", "--password", weak, ok=False)
        assert refused.code == 65, weak
    assert Mailbox.objects.filter(domain=monsite.domain).count() == 1


def test_the_api_refuses_them(owner_api: Api, info_api: Api, info: Mailbox) -> None:
    for weak in WEAK:
        status, refused = owner_api.post("/domains/monsite.be/mailboxes", {"password": weak})
        assert status == 400 and refused["field"] == "password", weak
        status, refused = owner_api.post(
            "/domains/monsite.be/mailboxes/monsite0001/password", {"password": weak}
        )
        assert status == 400 and refused["field"] == "password", weak
        assert "easy to guess" in refused["detail"] or "built from" in refused["detail"]


def test_the_panel_refuses_them(owner_browser: Browser, monsite: Customer, info: Mailbox) -> None:
    for weak in WEAK:
        page = owner_browser.post(
            "/d/monsite.be/password/monsite0001/", {"password": weak, "password_again": weak}
        ).content.decode()
        assert "easy to guess" in page or "built from" in page, weak
    assert Mailbox.objects.get(login="monsite0001").password_hash == info.password_hash


def test_the_strength_shown_while_typing_is_the_servers(
    owner_browser: Browser, monsite: Customer
) -> None:
    def ask(**form: str) -> dict[str, object]:
        response = owner_browser.post("/password-strength/", form)
        assert response.status_code == 200
        return json.loads(response.content)

    weak = ask(password="Monsite.be2026!", login="monsite0002", domain="monsite.be")
    assert weak["ok"] is False and "built from" in str(weak["message"])
    good = ask(password="N3w-Pass-phrase!", login="monsite0002", domain="monsite.be")
    assert good == {"ok": True, "score": 4, "message": "Strong password."}
    french = owner_browser.post(
        "/password-strength/", {"password": "abcdefghijklmnop"}, HTTP_ACCEPT_LANGUAGE="fr"
    )
    assert "trop facile" in json.loads(french.content)["message"]
    # Not for anonymous visitors.
    assert Browser().post("/password-strength/", {"password": "x"}).status_code == 403
    # The pages that set a password carry the meter (shown only with JavaScript).
    page = owner_browser.text("/d/monsite.be/users/new/")
    assert "data-strength" in page
