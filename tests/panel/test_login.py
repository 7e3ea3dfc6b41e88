"""Chapter 2: signing in to the panel, "remember login permanently", logging out."""

from __future__ import annotations

from django.test import Client

from tests.fixtures.accounts import Customer


def login(client: Client, username: str, password: str, remember: bool = False):
    data = {"username": username, "password": password}
    if remember:
        data["remember"] = "1"
    return client.post("/login/", data, secure=True)


def test_owner_signs_in_and_sees_the_dashboard(client: Client, monsite: Customer) -> None:
    response = login(client, "monsite", monsite.password)
    assert response.status_code == 302
    assert client.session.get_expire_at_browser_close()  # not remembered
    page = client.get("/", secure=True)
    body = page.content.decode()
    assert "Virtual Server Information" in body and "monsite.be" in body
    assert "1 out of 5" in body


def test_remember_login_permanently_gives_a_long_session(client: Client, monsite: Customer) -> None:
    login(client, "monsite", monsite.password, remember=True)
    assert not client.session.get_expire_at_browser_close()
    assert client.session.get_expiry_age() >= 300 * 24 * 3600


def test_wrong_password_and_unknown_user_look_the_same(client: Client, monsite: Customer) -> None:
    wrong = login(client, "monsite", "not-the-password")
    unknown = login(client, "nobody", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.content.decode().count("Login failed") == 1
    assert "Login failed" in unknown.content.decode()


def test_logout_needs_post_and_ends_the_session(client: Client, monsite: Customer) -> None:
    login(client, "monsite", monsite.password)
    assert client.get("/logout/", secure=True).status_code == 405
    client.post("/logout/", secure=True)
    assert client.get("/", secure=True).status_code == 302


def test_login_form_has_csrf_protection(monsite: Customer) -> None:
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        "/login/", {"username": "monsite", "password": monsite.password}, secure=True
    )
    assert response.status_code == 403
