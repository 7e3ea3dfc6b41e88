"""The REST API replays the manual: the provider sets up monsite.be, the owner adds
monsite0001 with its addresses, forwarding, vacation message and aliases, the mailbox
user changes their own settings. Same services and rules as the panel and the CLI."""

from __future__ import annotations

from django.test import Client

from courriel.accounts.models import Mailbox
from courriel.accounts.services.mailboxes import authenticate, create_mailbox
from courriel.api.tokens import create_token
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.api import Api
from tests.fixtures.panel import Admin

GB = 1024**3


def test_no_token_no_entry(monsite: Customer) -> None:
    client = Client()
    assert client.get("/api/v1/domains", secure=True).status_code == 401
    bad = client.get("/api/v1/domains", secure=True, HTTP_AUTHORIZATION="Bearer crl_nope")
    assert bad.status_code == 401
    assert client.get("/api/v1/openapi.json", secure=True).status_code == 200
    docs = client.get("/api/v1/docs", secure=True)
    assert docs.status_code == 200 and b"/static/ninja/swagger-ui.css" in docs.content


def test_api_docs_assets_are_served_without_a_cdn() -> None:
    """django-ninja's templates and static files come from its package directory
    (it is not an installed app, so that processes without the panel never load it)."""
    client = Client()
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-init.js"):
        response = client.get(f"/static/ninja/{asset}", secure=True)
        assert response.status_code == 200, asset


def test_valid_tokens_are_never_refused_because_of_failed_passwords(
    owner_api: Api, monsite: Customer
) -> None:
    """As found: 20 failures from an address refused valid tokens from it."""
    client = Client()
    for n in range(25):
        client.get("/api/v1/me", secure=True, HTTP_AUTHORIZATION=f"Bearer crl_guess{n}")
        client.post("/login/", {"username": f"guess{n}", "password": "x"}, secure=True)
    assert (
        client.get("/api/v1/me", secure=True, HTTP_AUTHORIZATION="Bearer crl_x").status_code == 401
    )
    status, me = owner_api.get("/me")
    assert status == 200 and me["name"] == "api:monsite"


def test_a_disabled_holder_loses_api_access(monsite: Customer, info: Mailbox) -> None:
    from courriel.accounts.permissions import Actor
    from courriel.accounts.services.mailboxes import modify_mailbox

    api = Api(create_token(Actor.for_mailbox(info), "t").secret)
    assert api.get("/me")[0] == 200
    modify_mailbox(monsite.actor, info, login_disabled=True)
    assert api.get("/me")[0] == 401


def test_provider_sets_up_a_customer_domain(provider_api: Api, servers) -> None:  # type: ignore[no-untyped-def]
    status, servers_list = provider_api.get("/servers")
    assert status == 200 and [s["name"] for s in servers_list][:1] == ["maximusconfessor"]
    status, plans = provider_api.get("/plans")
    assert [p["mail_quota"] for p in plans] == [3 * GB, 30 * GB, 300 * GB]
    status, created = provider_api.post(
        "/domains",
        {
            "name": "monsite.be",
            "plan": "recommended",
            "server": "maximusconfessor",
            "contact_email": "monsite@monsite.be",
            "description": "Monsite",
        },
    )
    assert status == 201, created
    assert created["owner"] == "monsite" and authenticate("monsite", created["password"]).ok
    assert created["setup"]["Administration URL"] == "https://maximusconfessor.all2all.org:10000/"
    status, shown = provider_api.get("/domains/monsite.be")
    assert shown["usage"]["servers"] == 1 and shown["usage"]["max_servers"] == 5
    assert shown["usage"]["additional_mailboxes"] == 10
    status, again = provider_api.post("/domains", {"name": "monsite.be", "plan": "simple"})
    assert status == 409 and "already exists" in again["detail"]
    status, bad = provider_api.post("/domains", {"name": "monsite", "plan": "simple"})
    assert status == 400 and bad["detail"]
    status, _typo = provider_api.post("/domains", {"name": "x.be", "plann": "simple"})
    assert status == 422


def test_provider_catalogue(provider_api: Api, servers) -> None:  # type: ignore[no-untyped-def]
    status, server = provider_api.post(
        "/servers", {"name": "newton", "hostname": "newton.all2all.org", "ip_address": "10.0.0.1"}
    )
    assert status == 201 and server["admin_url"] == "https://newton.all2all.org:10000/"
    status, changed = provider_api.patch("/servers/newton", {"accepts_domains": False})
    assert status == 200 and changed["accepts_domains"] is False
    assert provider_api.delete("/servers/newton")[0] == 200
    assert provider_api.get("/servers/newton")[0] == 404
    status, plan = provider_api.post(
        "/plans", {"name": "business", "mail_quota": 50 * GB, "max_mailboxes": 20}
    )
    assert status == 201 and plan["default_mailbox_quota"] == 3 * GB
    status, plan = provider_api.patch("/plans/business", {"max_mailboxes": None})
    assert plan["max_mailboxes"] is None and plan["mail_quota"] == 50 * GB
    assert provider_api.delete("/plans/business")[0] == 200
    status, bad = provider_api.post(
        "/plans", {"name": "odd", "mail_quota": GB, "default_mailbox_quota": 2 * GB}
    )
    assert status == 400 and bad["field"] == "default_mailbox_quota"
    # Longer than the database columns: refused as input, never a database error.
    for path, body in (
        ("/plans", {"name": "x" * 51}),
        ("/plans", {"name": "long", "label": "x" * 101}),
        ("/servers", {"name": "x", "hostname": "x.example.org", "admin_url": "x" * 301}),
        (
            "/domains",
            {"name": "x.be", "plan": "simple", "contact_email": "a" * 64 + "@" + "b" * 200 + ".be"},
        ),
    ):
        assert provider_api.post(path, body)[0] == 422, path


def test_owner_manages_mailboxes_like_chapters_6_to_9(owner_api: Api, monsite: Customer) -> None:
    status, created = owner_api.post(
        "/domains/monsite.be/mailboxes",
        {"real_name": "Info", "password": STRONG, "quota": GB, "addresses": ["info"]},
    )
    assert status == 201, created
    assert created["mailbox"]["login"] == "monsite0001"  # the naming convention
    assert created["additional_mailboxes"] == 9 and created["password"] is None
    status, changed = owner_api.patch(
        "/domains/monsite.be/mailboxes/monsite0001",
        {
            "addresses": ["info", "contact", "information"],
            "forward_to": ["monsite@gmail.com"],
            "autoreply_enabled": True,
            "autoreply_message": "I'm currently not available",
            "autoreply_interval": 600,
            "autoreply_start": "2010-09-09",
            "autoreply_end": "2010-09-19",
        },
    )
    assert status == 200, changed
    assert changed["additional_addresses"] == [
        "contact@monsite.be",
        "info@monsite.be",
        "information@monsite.be",
    ]
    assert changed["autoreply"]["interval_seconds"] == 600
    status, refused = owner_api.patch(
        "/domains/monsite.be/mailboxes/monsite0001", {"quota": 100 * GB}
    )
    assert status == 409 and refused["field"] == "quota"
    status, page = owner_api.get("/domains/monsite.be/mailboxes", limit=1, offset=1)
    assert page["count"] == 2 and [m["login"] for m in page["items"]] == ["monsite0001"]
    status, generated = owner_api.post(
        "/domains/monsite.be/mailboxes/monsite0001/password", {"generate": True}
    )
    assert authenticate("monsite0001", generated["password"]).ok
    status, _ = owner_api.post(
        "/domains/monsite.be/mailboxes/monsite0001/password",
        {"generate": True, "password": STRONG},
    )
    assert status == 400
    status, shown = owner_api.get("/domains/monsite.be/mailboxes/monsite0001")
    assert "password" not in str(shown).lower().replace("password_changed_at", "")
    assert owner_api.delete("/domains/monsite.be/mailboxes/monsite0001")[0] == 200
    status, _owners = owner_api.delete("/domains/monsite.be/mailboxes/monsite")
    assert status == 409


def test_owner_batch_creates_and_manages_aliases(owner_api: Api, monsite: Customer) -> None:
    status, report = owner_api.post(
        "/domains/monsite.be/mailboxes/import",
        {"text": f"login,real_name,password\nmonsite0001,Info,{STRONG}\nbad login,X,\n"},
    )
    assert status == 200 and [line["ok"] for line in report] == [True, False]
    status, alias = owner_api.post(
        "/domains/monsite.be/aliases", {"name": "frederic", "forward_to": ["frederic@gmail.com"]}
    )
    assert status == 201 and alias["email"] == "frederic@monsite.be"
    status, catch_all = owner_api.post(
        "/domains/monsite.be/aliases", {"name": "*", "mailboxes": ["monsite0001"]}
    )
    assert status == 201 and catch_all["catch_all"]
    assert owner_api.get("/domains/monsite.be/aliases/*")[0] == 200
    status, aliases = owner_api.get("/domains/monsite.be/aliases", search="fred")
    assert [a["name"] for a in aliases["items"]] == ["frederic"]
    status, changed = owner_api.patch("/domains/monsite.be/aliases/frederic", {"name": "fred"})
    assert changed["name"] == "fred"
    assert owner_api.delete("/domains/monsite.be/aliases/fred")[0] == 200
    status, nothing = owner_api.post("/domains/monsite.be/aliases", {"name": "x"})
    assert status == 400 and nothing["field"] == "destinations"


def test_owner_sub_servers_and_domain_aliases(owner_api: Api, monsite: Customer) -> None:
    status, sub = owner_api.post("/domains", {"name": "monsite.eu", "parent": "monsite.be"})
    assert status == 201 and sub["password"] is None
    status, listed = owner_api.get("/domains")
    assert [d["name"] for d in listed["items"]] == ["monsite.be", "monsite.eu"]
    status, _refused = owner_api.post("/domains", {"name": "other.be", "plan": "simple"})
    assert status == 403
    status, alias = owner_api.post("/domains/monsite.be/domain-aliases", {"name": "monsite.nl"})
    assert status == 201 and alias["domain"] == "monsite.be"
    assert [a["name"] for a in owner_api.get("/domains/monsite.be/domain-aliases")[1]] == [
        "monsite.nl"
    ]
    assert owner_api.delete("/domains/monsite.be/domain-aliases/monsite.nl")[0] == 200
    status, changed = owner_api.patch("/domains/monsite.be", {"description": "Monsite asbl"})
    assert changed["description"] == "Monsite asbl"
    assert owner_api.patch("/domains/monsite.be", {"plan": "large"})[0] == 403
    assert owner_api.delete("/domains/monsite.eu")[0] == 200
    assert owner_api.delete("/domains/monsite.be")[0] == 403
    assert owner_api.get("/servers")[0] == 403 and owner_api.get("/plans")[0] == 403


def test_mailbox_user_self_service(info_api: Api, info: Mailbox) -> None:
    status, me = info_api.get("/me")
    assert me["role"] == "mailbox" and me["mailbox"]["login"] == "monsite0001"
    status, changed = info_api.patch(
        "/me", {"forward_to": ["monsite@gmail.com"], "deliver_normally": False}
    )
    assert status == 200 and changed["mailbox"]["forward_to"] == ["monsite@gmail.com"]
    status, _refused = info_api.patch("/me", {"quota": None})
    assert status == 422  # not a self-service field
    assert info_api.get("/domains")[1]["items"] == []
    assert info_api.get("/domains/monsite.be")[0] == 404
    assert info_api.get("/domains/monsite.be/mailboxes/monsite0001")[0] == 404
    status, _password = info_api.patch(
        "/me", {"password": "N3w-Pass-phrase!", "current_password": STRONG}
    )
    assert status == 200 and authenticate("monsite0001", "N3w-Pass-phrase!").ok


def test_audit_and_tokens(
    provider_api: Api, owner_api: Api, monsite: Customer, autre: Customer, admin: Admin
) -> None:
    _, log = owner_api.get("/audit")
    assert {entry["domain"] for entry in log["items"]} == {"monsite.be"}
    _, log = provider_api.get("/audit", domain="autresite.be")
    assert log["count"] >= 1 and {e["domain"] for e in log["items"]} == {"autresite.be"}
    _, tokens = owner_api.get("/tokens")
    assert [t["holder"] for t in tokens["items"]] == ["monsite"]
    _, everyone = provider_api.get("/tokens")
    assert {t["holder"] for t in everyone["items"]} == {"monsite", "admin"}
    mine = tokens["items"][0]["id"]
    assert owner_api.delete(f"/tokens/{mine}")[0] == 200
    assert owner_api.get("/me")[0] == 401


def test_bad_input_is_a_clear_error_never_a_crash(owner_api: Api, monsite: Customer) -> None:
    create_mailbox(monsite.actor, monsite.domain, password=STRONG)
    cases = [
        ("post", "/domains/monsite.be/mailboxes", {"quota": -1}),
        ("post", "/domains/monsite.be/mailboxes", {"quota": 10**30}),
        ("post", "/domains/monsite.be/mailboxes", {"real_name": "a\x00b", "password": STRONG}),
        ("patch", "/domains/monsite.be/mailboxes/monsite0001", {"autoreply_start": "soon"}),
        ("get", "/domains/monsite.be/mailboxes?limit=0", None),
        ("get", "/domains/monsite.be/mailboxes?limit=100000", None),
        ("get", "/domains/monsite.be/mailboxes?offset=-1", None),
    ]
    for method, path, body in cases:
        status, answer = owner_api.call(method, path, body)
        assert status == 422, (path, body, answer)
    assert owner_api.get("/domains/monsite.be/mailboxes/a%00b")[0] == 400
    assert owner_api.get("/domains/not a domain")[0] == 404
    assert owner_api.patch("/domains/monsite.be/mailboxes/monsite0001", {})[0] == 400
