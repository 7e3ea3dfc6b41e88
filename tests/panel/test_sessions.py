"""Sessions and tokens (issue 11, items 4 and 5): a password change made elsewhere used
to break the user's other browsers (every page, /login/ too, answered "Server error"
until cookies were cleared) and left API tokens working. Now the other sessions land
on the login page, the tokens are revoked (the page says so), and changing one's own
password or creating a token asks for the current password."""

from __future__ import annotations

from courriel.accounts.models import Mailbox
from courriel.accounts.permissions import Actor
from courriel.accounts.services.mailboxes import authenticate, set_password
from courriel.api.models import ApiToken
from courriel.api.tokens import create_token
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.panel import Admin, Browser, signed_in

NEW = "N3w-Pass-phrase!"


def test_other_browsers_land_on_the_login_page_after_a_password_change(
    monsite: Customer, info: Mailbox
) -> None:
    elsewhere = signed_in(info)
    assert elsewhere.get("/me/").status_code == 200
    set_password(monsite.actor, info, NEW)  # the owner resets it
    for url in ("/me/", "/", "/tokens/"):
        response = elsewhere.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    assert elsewhere.get("/login/").status_code == 200
    assert "_auth_user_id" not in elsewhere.session


def test_own_password_change_keeps_this_session_ends_the_others_and_revokes_tokens(
    monsite: Customer, info: Mailbox
) -> None:
    here, there = signed_in(info), signed_in(info)
    secret = create_token(Actor.for_mailbox(info), "phone app").secret
    done = here.post(
        "/me/password/",
        {"current": STRONG, "password": NEW, "password_again": NEW},
        follow=True,
    )
    page = done.content.decode()
    assert "Your password is changed." in page
    assert "Your other sessions have ended" in page and "1 API token was revoked" in page
    assert here.get("/me/").status_code == 200
    assert there.get("/me/").status_code == 302
    assert not ApiToken.objects.filter(mailbox=info).exists()
    assert here.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


def test_an_owner_changing_their_own_password_is_asked_the_current_one(
    owner_browser: Browser, monsite: Customer, info: Mailbox
) -> None:
    own = "/d/monsite.be/password/monsite/"
    assert 'name="current_password"' in owner_browser.text(own)
    refused = owner_browser.post(own, {"password": NEW, "password_again": NEW})
    assert "Type your current password" in refused.content.decode()
    wrong = owner_browser.post(
        own, {"password": NEW, "password_again": NEW, "current_password": "nope-nope"}
    )
    assert "This is not your current password." in wrong.content.decode()
    assert authenticate("monsite", monsite.password).ok
    done = owner_browser.post(
        own, {"password": NEW, "password_again": NEW, "current_password": monsite.password}
    )
    assert done.status_code == 302 and authenticate("monsite", NEW).ok
    # Edit Mailbox and "Generate" on one's own mailbox ask for it too.
    edit = owner_browser.text("/d/monsite.be/user/monsite/")
    assert 'name="current_password"' in edit
    ask = owner_browser.post("/d/monsite.be/user/monsite/generate-password/", {"confirm": "yes"})
    assert "Type your current password" in ask.content.decode()
    assert authenticate("monsite", NEW).ok
    # Another mailbox's password needs none: the owner manages it.
    assert 'name="current_password"' not in owner_browser.text(
        "/d/monsite.be/password/monsite0001/"
    )
    other = owner_browser.post(
        "/d/monsite.be/password/monsite0001/", {"password": NEW, "password_again": NEW}
    )
    assert other.status_code == 302


def test_creating_a_token_asks_for_the_current_password(
    owner_browser: Browser, provider_browser: Browser, monsite: Customer, admin: Admin
) -> None:
    refused = owner_browser.post("/tokens/", {"name": "script"})
    assert refused.status_code == 200 and "Type your current password" in refused.content.decode()
    wrong = owner_browser.post("/tokens/", {"name": "script", "current_password": "nope-nope"})
    assert "This is not your current password." in wrong.content.decode()
    assert not ApiToken.objects.exists()
    made = owner_browser.post("/tokens/", {"name": "script", "current_password": monsite.password})
    assert "secret-value" in made.content.decode()
    made = provider_browser.post("/tokens/", {"name": "noc", "current_password": admin.password})
    assert "secret-value" in made.content.decode()
    assert ApiToken.objects.count() == 2
