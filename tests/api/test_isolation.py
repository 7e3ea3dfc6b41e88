"""Tenant isolation in the API: owner A calls every operation of the OpenAPI schema with
the names of owner B's objects, with well-formed bodies, and gets 403 or 404 without
anything changing; lists show none of B's objects; a mailbox user reaches nothing of
the owner's. The operations come from the served schema, so a new one is covered."""

from __future__ import annotations

from typing import Any

import pytest

from courriel.accounts.models import Mailbox
from courriel.accounts.permissions import Actor
from courriel.accounts.services.aliases import create_alias
from courriel.accounts.services.domains import add_domain_alias
from courriel.accounts.services.mailboxes import create_mailbox
from courriel.api.routes import api
from courriel.api.tokens import create_token
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.api import Api
from tests.panel.test_isolation import snapshot

BODIES: dict[tuple[str, str], Any] = {
    ("post", "/servers"): {"name": "evil", "hostname": "evil.example.org"},
    ("patch", "/servers/{name}"): {"accepts_domains": False},
    ("post", "/plans"): {"name": "evil"},
    ("patch", "/plans/{name}"): {"max_mailboxes": 1000},
    ("post", "/domains"): {"name": "evil.be", "parent": "autresite.be"},
    ("patch", "/domains/{name}"): {"description": "hacked"},
    ("post", "/domains/{name}/domain-aliases"): {"name": "evil.be"},
    ("post", "/domains/{name}/mailboxes"): {"password": STRONG},
    ("post", "/domains/{name}/mailboxes/import"): {"text": f"evil:Evil:{STRONG}"},
    ("patch", "/domains/{name}/mailboxes/{login}"): {"forward_to": ["evil@example.org"]},
    ("post", "/domains/{name}/mailboxes/{login}/password"): {"generate": True},
    ("post", "/domains/{name}/mailboxes/{login}/account-mail"): {"to": "evil@example.org"},
    ("post", "/domains/{name}/aliases"): {"name": "evil", "forward_to": ["evil@example.org"]},
    ("patch", "/domains/{name}/aliases/{alias}"): {"forward_to": ["evil@example.org"]},
    ("patch", "/me"): {"real_name": "Me"},
    ("post", "/greylist/whitelist"): {"kind": "client", "value": "10.0.0.0/8"},
    ("post", "/greylist/whitelist/import"): {"kind": "client", "text": "10.0.0.0/8"},
    ("patch", "/domains/{name}/greylisting"): {"enabled": False},
    ("patch", "/domains/{name}/mailboxes/{login}/greylisting"): {"enabled": False},
    ("patch", "/domains/{name}/filtering"): {"dmarc": "monitor"},
    ("post", "/domains/{name}/move"): {"to": "moses"},
    ("patch", "/domains/{name}/mailboxes/{login}/spam"): {"junk_score": -100},
}
# Operations about the caller themselves: allowed, checked for what they show.
OWN = {
    ("get", "/me"),
    ("patch", "/me"),
    ("get", "/me/download"),
    ("get", "/audit"),
    ("get", "/tokens"),
    ("get", "/domains"),
    ("get", "/greylist/lookup"),  # limited to the caller's mail: see test_greylist_api
    ("get", "/statistics"),  # the caller's domains: see tests/stats/test_counting.py
}


def operations() -> list[tuple[str, str]]:
    schema = api.get_openapi_schema()
    return [
        (method, path.removeprefix("/api/v1"))
        for path, methods in schema["paths"].items()
        for method in methods
    ]


@pytest.fixture
def b_objects(autre: Customer) -> dict[str, Any]:
    mailbox = create_mailbox(autre.actor, autre.domain, password=STRONG, real_name="B").mailbox
    create_alias(autre.actor, autre.domain, "secret", forward_to=["b@example.org"])
    add_domain_alias(autre.actor, autre.domain, "autresite.eu")
    token = create_token(autre.actor, "b's token").token
    return {"mailbox": mailbox, "token": token}


def fill(path: str, values: dict[str, Any]) -> str:
    for key, value in values.items():
        path = path.replace("{" + key + "}", str(value))
    return path


def refused_everywhere(api: Api, values: dict[str, Any]) -> int:
    """Call every operation (but the caller's own) with these names and a well-formed
    body; each must be refused without revealing B's objects. Returns how many."""
    checked = 0
    for method, template in operations():
        if (method, template) in OWN:
            continue
        path = fill(template, values)
        if "/domain-aliases/{alias}" in template:  # B's domain alias, not a mail alias
            path = fill(template, {**values, "alias": values["domain_alias"]})
        if template.startswith(("/servers/", "/plans/")):
            path = fill(template, {"name": "maximusconfessor" if "server" in template else "large"})
        status, body = api.call(method, path, BODIES.get((method, template)))
        assert status in (403, 404), (method, path, status, body)
        assert "autresite0001" not in str(body) and "b@example.org" not in str(body)
        checked += 1
    return checked


def test_every_operation_with_b_names_is_refused_to_owner_a(
    owner_api: Api, monsite: Customer, b_objects: dict[str, Any]
) -> None:
    values = {
        "name": "autresite.be",
        "login": b_objects["mailbox"].login,
        "alias": "secret",
        "domain_alias": "autresite.eu",
        "token_id": b_objects["token"].pk,
        "kind": "client",
        "value": "192.0.2.7",
        "move_id": 1,
    }
    before = snapshot()
    assert refused_everywhere(owner_api, values) >= 25
    assert snapshot() == before


def test_a_own_domain_with_b_mailboxes_and_aliases(
    owner_api: Api, monsite: Customer, b_objects: dict[str, Any]
) -> None:
    login = b_objects["mailbox"].login
    before = snapshot()
    for method, path in (
        ("get", f"/domains/monsite.be/mailboxes/{login}"),
        ("patch", f"/domains/monsite.be/mailboxes/{login}"),
        ("delete", f"/domains/monsite.be/mailboxes/{login}"),
        ("post", f"/domains/monsite.be/mailboxes/{login}/password"),
        ("get", "/domains/monsite.be/aliases/secret"),
        ("delete", "/domains/monsite.be/aliases/secret"),
        ("delete", "/domains/monsite.be/domain-aliases/autresite.eu"),
    ):
        body = {"real_name": "x"} if method == "patch" else {"generate": True}
        status, _ = owner_api.call(method, path, body if method in ("post", "patch") else None)
        assert status in (400, 404), (method, path, status)
    status, refused = owner_api.post(
        "/domains/monsite.be/aliases", {"name": "steal", "mailboxes": [login]}
    )
    assert status == 400 and "No mailbox" in refused["detail"]
    assert snapshot() == before


def test_lists_show_nothing_of_b(
    owner_api: Api, monsite: Customer, b_objects: dict[str, Any]
) -> None:
    for path in ("/domains", "/audit", "/tokens", "/me"):
        status, body = owner_api.get(path)
        assert status == 200 and "autresite" not in str(body), path
    _, domains = owner_api.get("/domains", search="autre")
    assert domains["count"] == 0


def test_a_mailbox_user_reaches_nothing_of_the_owner(
    monsite: Customer, info: Mailbox, b_objects: dict[str, Any]
) -> None:
    info_api = Api(create_token(Actor.for_mailbox(info), "t").secret)
    values = {
        "name": "monsite.be",
        "login": "monsite",
        "alias": "abuse",
        "domain_alias": "autresite.eu",
        "token_id": b_objects["token"].pk,
        "kind": "client",
        "value": "192.0.2.7",
        "move_id": 1,
    }
    before = snapshot()
    assert refused_everywhere(info_api, values) >= 25
    for path in ("/domains", "/audit"):
        _, body = info_api.get(path)
        assert body["items"] == [], path
    assert snapshot() == before
