"""Issue 11, item 5 through the API: `PATCH /me {"password": ...}` did not ask for the
current password and left every token working, so a stolen token or session became
lasting access."""

from __future__ import annotations

from courriel.accounts.models import Mailbox
from courriel.accounts.permissions import Actor
from courriel.accounts.services.mailboxes import authenticate
from courriel.api.models import ApiToken
from courriel.api.tokens import create_token
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.api import Api

NEW = "N3w-Pass-phrase!"


def test_changing_ones_own_password_asks_for_the_current_one(info_api: Api, info: Mailbox) -> None:
    status, refused = info_api.patch("/me", {"password": NEW})
    assert status == 403 and refused["field"] == "current_password"
    status, refused = info_api.patch("/me", {"password": NEW, "current_password": "nope-nope"})
    assert status == 403 and "not your current password" in refused["detail"]
    assert authenticate("monsite0001", STRONG).ok
    # Other self-service changes need no password.
    assert info_api.patch("/me", {"real_name": "Info desk"})[0] == 200


def test_a_password_change_revokes_the_tokens_and_says_so(info_api: Api, info: Mailbox) -> None:
    create_token(Actor.for_mailbox(info), "second")
    status, changed = info_api.patch("/me", {"password": NEW, "current_password": STRONG})
    assert status == 200
    assert changed["tokens_revoked"] == 2 and changed["other_sessions_ended"] is True
    assert not ApiToken.objects.filter(mailbox=info).exists()
    assert info_api.get("/me")[0] == 401  # the token that made the change is gone too
    assert authenticate("monsite0001", NEW).ok


def test_the_owners_own_password_through_the_mailbox_routes(
    owner_api: Api, monsite: Customer, info: Mailbox
) -> None:
    status, refused = owner_api.post(
        "/domains/monsite.be/mailboxes/monsite/password", {"password": NEW}
    )
    assert status == 403 and refused["field"] == "current_password"
    status, refused = owner_api.patch("/domains/monsite.be/mailboxes/monsite", {"password": NEW})
    assert status == 403
    status, done = owner_api.post(
        "/domains/monsite.be/mailboxes/monsite/password",
        {"password": NEW, "current_password": monsite.password},
    )
    assert status == 200 and done["tokens_revoked"] == 1
    # The owner sets monsite0001's password without knowing it (the manual's chapter 11).
    owner = Api(create_token(monsite.actor, "t").secret)
    status, done = owner.post(
        "/domains/monsite.be/mailboxes/monsite0001/password", {"generate": True}
    )
    assert status == 200 and done["password"]
