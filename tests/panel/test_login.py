"""Chapter 2: signing in to the panel, "remember login permanently", logging out,
throttling of wrong passwords, and where each kind of user lands."""

from __future__ import annotations

from django.test import Client

from courriel.accounts.models import Mailbox
from courriel.accounts.services.mailboxes import modify_mailbox
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.panel import Admin, Browser


def login(client: Client, username: str, password: str, remember: bool = False, **extra: str):  # type: ignore[no-untyped-def]
    data = {"username": username, "password": password}
    if remember:
        data["remember"] = "1"
    return client.post("/login/", data, secure=True, **extra)


def test_owner_signs_in_and_sees_the_virtual_server_information(
    browser: Browser, monsite: Customer
) -> None:
    response = login(browser, "monsite", monsite.password)
    assert response.status_code == 302
    assert browser.session.get_expire_at_browser_close()  # not remembered
    page = browser.get("/", follow=True)
    body = page.content.decode()
    assert page.redirect_chain[-1][0] == "/d/monsite.be/"
    assert "Virtual Server Information" in body and "monsite.be" in body
    assert "1 out of 5" in body
    assert "out of 30\u00a0GB" in body
    assert "Server owner" in body


def test_remember_login_permanently_gives_a_long_session(
    browser: Browser, monsite: Customer
) -> None:
    login(browser, "monsite", monsite.password, remember=True)
    assert not browser.session.get_expire_at_browser_close()
    assert browser.session.get_expiry_age() >= 300 * 24 * 3600


def test_mailbox_users_land_in_self_service(browser: Browser, info: Mailbox) -> None:
    login(browser, "monsite0001", STRONG)
    page = browser.get("/", follow=True)
    assert page.redirect_chain[-1][0] == "/me/"
    assert "My account" in page.content.decode()


def test_the_primary_address_works_as_a_login(browser: Browser, info: Mailbox) -> None:
    assert login(browser, "monsite0001@monsite.be", STRONG).status_code == 302


def test_provider_lands_on_the_system_information(browser: Browser, admin: Admin) -> None:
    login(browser, "admin", admin.password)
    body = browser.text("/")
    assert "System Information" in body and "Provider admin" in body


def test_wrong_password_and_unknown_user_look_the_same(browser: Browser, monsite: Customer) -> None:
    wrong = login(browser, "monsite", "not-the-password")
    unknown = login(browser, "nobody", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda r: r.content.decode().replace("monsite", "").replace("nobody", "")  # noqa: E731
    assert (
        strip(wrong).split("csrfmiddlewaretoken")[0]
        == strip(unknown).split("csrfmiddlewaretoken")[0]
    )
    assert "Login failed" in wrong.content.decode()


def test_failed_logins_are_throttled_per_login_and_address(
    browser: Browser, monsite: Customer
) -> None:
    for n in range(5):
        assert login(browser, "monsite", f"wrong-{n}", REMOTE_ADDR="192.0.2.9").status_code == 401
    blocked = login(browser, "monsite", monsite.password, REMOTE_ADDR="192.0.2.9")
    assert blocked.status_code == 429
    assert "Too many failed logins. Wait 15 minutes and try again." in blocked.content.decode()
    assert "_auth_user_id" not in browser.session
    # Never per login alone: the owner at another address signs in at once.
    assert (
        login(Browser(), "monsite", monsite.password, REMOTE_ADDR="192.0.2.10").status_code == 302
    )
    # An unknown login is throttled exactly the same way: no way to tell them apart.
    for n in range(5):
        login(browser, "nobody", f"wrong-{n}", REMOTE_ADDR="192.0.2.9")
    assert login(browser, "nobody", "x", REMOTE_ADDR="192.0.2.9").status_code == 429


def test_the_same_wrong_password_counts_once(browser: Browser, monsite: Customer) -> None:
    for _ in range(10):
        assert login(browser, "monsite", "old-password").status_code == 401
    assert login(browser, "monsite", monsite.password).status_code == 302


def test_failed_logins_are_throttled_per_address(
    browser: Browser, monsite: Customer, info: Mailbox
) -> None:
    assert (
        login(Browser(), "monsite", monsite.password, REMOTE_ADDR="198.51.100.7").status_code == 302
    )
    for n in range(20):
        login(browser, f"guess{n}", "wrong-password", REMOTE_ADDR="198.51.100.7")
    assert login(browser, "monsite0001", STRONG, REMOTE_ADDR="198.51.100.7").status_code == 429
    assert login(browser, "monsite0001", STRONG, REMOTE_ADDR="198.51.100.8").status_code == 302
    # A login that signed in from that address before still gets in from there.
    assert (
        login(Browser(), "monsite", monsite.password, REMOTE_ADDR="198.51.100.7").status_code == 302
    )


def test_a_disabled_login_is_told_so_only_with_the_right_password(
    browser: Browser, monsite: Customer, info: Mailbox
) -> None:
    modify_mailbox(monsite.actor, info, login_disabled=True)
    right = login(browser, "monsite0001", STRONG)
    assert right.status_code == 403 and "temporarily disabled" in right.content.decode()
    wrong = login(browser, "monsite0001", "wrong-password")
    assert wrong.status_code == 401 and "temporarily disabled" not in wrong.content.decode()


def test_next_goes_back_to_the_page_asked_for_but_never_elsewhere(
    browser: Browser, monsite: Customer
) -> None:
    asked = browser.get("/d/monsite.be/users/")
    assert asked.status_code == 302 and asked["Location"].startswith("/login/?next=")
    back = browser.post(
        "/login/?next=/d/monsite.be/users/", {"username": "monsite", "password": monsite.password}
    )
    assert back["Location"] == "/d/monsite.be/users/"
    browser.post("/logout/")
    away = browser.post(
        "/login/",
        {"username": "monsite", "password": monsite.password, "next": "https://evil.example/"},
    )
    assert away["Location"] == "/"


def test_logout_needs_post_and_ends_the_session(browser: Browser, monsite: Customer) -> None:
    login(browser, "monsite", monsite.password)
    assert browser.get("/logout/").status_code == 405
    browser.post("/logout/")
    assert browser.get("/").status_code == 302


def test_login_form_has_csrf_protection(monsite: Customer) -> None:
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        "/login/", {"username": "monsite", "password": monsite.password}, secure=True
    )
    assert response.status_code == 403
    assert "The form has expired" in response.content.decode()


def test_a_mailbox_language_follows_it_to_another_browser(
    browser: Browser, monsite: Customer, info: Mailbox
) -> None:
    modify_mailbox(monsite.actor, info, language="nl")
    response = login(browser, "monsite0001", STRONG)
    assert response.cookies["courriel_language"].value == "nl"
    assert "Mijn account" in browser.text("/me/")
