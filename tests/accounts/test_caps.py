"""Caps on every text and list (issue 11, item 6) and the smaller holes of item 7, in
the services, so that the panel, the API and the CLI refuse the same input with the
same clear message. As found: Edit Mailbox saved 10,000 additional addresses (the API
stopped at 100) and held the database's write lock for 9 s meanwhile."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from courriel.accounts.models import Address, Alias, HostingServer, Mailbox
from courriel.accounts.permissions import Actor
from courriel.accounts.services import aliases, domains
from courriel.accounts.services import servers as server_service
from courriel.accounts.services.mailboxes import create_mailbox, modify_mailbox
from courriel.api.tokens import create_token
from courriel.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.api import Api
from tests.fixtures.panel import Browser
from tests.fixtures.processes import InProcess
from tests.panel.test_mailbox_pages import edit_form

MANY = [f"extra{n}" for n in range(10_000)]
MAX_QUERIES = 30  # refusing the form costs 15 (session, user, mailbox, domain...)


def test_ten_thousand_additional_addresses_are_refused_at_once(
    owner_browser: Browser, owner_api: Api, monsite: Customer, info: Mailbox
) -> None:
    owner_browser.text("/d/monsite.be/user/monsite0001/")  # the panel's code is loaded
    started = time.monotonic()
    with CaptureQueriesContext(connection) as queries:
        page = owner_browser.post(
            "/d/monsite.be/user/monsite0001/", edit_form(info, addresses="\n".join(MANY))
        ).content.decode()
    assert "At most 100 additional addresses" in page
    # At once: refused before anything is looked up or written address by address
    # (found: 10,000 saved, the write lock held 9 s); the time bound only catches a
    # gross slowness, a loaded machine may take seconds for one request.
    assert len(queries.captured_queries) <= MAX_QUERIES, queries.captured_queries
    assert time.monotonic() - started < 15
    status, refused = owner_api.patch(
        "/domains/monsite.be/mailboxes/monsite0001", {"addresses": MANY[:101]}
    )
    assert status == 400 and refused["field"] == "addresses"
    assert "At most 100 additional addresses" in refused["detail"]
    with pytest.raises(ValidationError):
        create_mailbox(monsite.actor, monsite.domain, password=STRONG, addresses=MANY[:101])
    assert Address.objects.filter(mailbox=info).count() == 2  # primary and info@
    modify_mailbox(monsite.actor, info, addresses=MANY[:100])  # 100 is fine


def test_alias_destinations_are_capped(monsite: Customer, owner_api: Api) -> None:
    targets = [f"person{n}@example.org" for n in range(101)]
    with pytest.raises(ValidationError) as refused:
        aliases.create_alias(monsite.actor, monsite.domain, "all", forward_to=targets)
    assert "At most 100 destinations" in refused.value.message
    status, answer = owner_api.post(
        "/domains/monsite.be/aliases", {"name": "all", "forward_to": targets}
    )
    assert status == 400 and "At most 100 destinations" in answer["detail"]
    assert not Alias.objects.filter(addresses__local_part="all").exists()


def test_names_descriptions_and_auto_replies_are_capped(
    monsite: Customer, info: Mailbox, owner_api: Api
) -> None:
    for change, field in (
        ({"real_name": "x" * 256}, "real_name"),
        ({"autoreply_message": "é" * 40_000}, "autoreply_message"),  # 80,000 bytes
    ):
        with pytest.raises(ValidationError) as refused:
            modify_mailbox(monsite.actor, info, **change)
        assert refused.value.field == field
        status, answer = owner_api.patch("/domains/monsite.be/mailboxes/monsite0001", change)
        assert status == 400 and answer["field"] == field, answer
    modify_mailbox(monsite.actor, info, real_name="x" * 255, autoreply_message="a" * 65_536)
    assert Mailbox.objects.get(pk=info.pk).real_name == "x" * 255
    with pytest.raises(ValidationError):
        domains.modify_domain(monsite.actor, monsite.domain, description="d" * 256)
    with pytest.raises(ValidationError):
        aliases.create_alias(
            monsite.actor, monsite.domain, "x", forward_to=["a@example.org"], description="d" * 256
        )


def test_batch_import_is_capped_at_ten_thousand_lines(cli: InProcess, monsite: Customer) -> None:
    from courriel.accounts.importer import parse

    with pytest.raises(ValidationError) as refused:
        parse("\n".join(f"user{n}:User {n}:" for n in range(10_001)))
    assert "At most 10000 mailboxes at once" in refused.value.message
    assert len(parse("\n".join(f"user{n}:User {n}:" for n in range(10_000)))) == 10_000


def test_the_admin_url_must_be_https(provider: Actor, servers: list[HostingServer]) -> None:
    """It goes into the set-up mail: `javascript:` there was accepted."""
    moses = HostingServer.objects.get(name="moses")
    for bad in ("javascript:alert(1)", "http://panel.example.org/", "https://", "ftp://x"):
        with pytest.raises(ValidationError) as refused:
            server_service.add_server(provider, "newton", "newton.example.org", admin_url=bad)
        assert "https://" in refused.value.message, bad
        with pytest.raises(ValidationError):
            server_service.modify_server(provider, moses, admin_url=bad)
    made = server_service.add_server(
        provider, "newton", "newton.example.org", admin_url="https://panel.example.org:10000/"
    )
    assert made.admin_url == "https://panel.example.org:10000/"


def test_only_the_provider_sets_the_administration_group(
    monsite: Customer, owner_api: Api, provider_api: Api
) -> None:
    with pytest.raises(PermissionDeniedError):
        domains.modify_domain(monsite.actor, monsite.domain, admin_group="wheel")
    status, _ = owner_api.patch("/domains/monsite.be", {"admin_group": "wheel"})
    assert status == 403
    status, changed = provider_api.patch("/domains/monsite.be", {"admin_group": "monsite-adm"})
    assert status == 200 and changed["admin_group"] == "monsite-adm"


def test_messages_never_name_another_customers_objects(
    monsite: Customer, autre: Customer, owner_browser: Browser
) -> None:
    theirs = create_mailbox(autre.actor, autre.domain, password=STRONG).mailbox
    with pytest.raises(ConflictError) as taken:
        create_mailbox(monsite.actor, monsite.domain, login=theirs.login, password=STRONG)
    assert taken.value.message == f"The login '{theirs.login}' is not available."
    # A forward to another customer's domain is taken as it is, like any other address:
    # "nosuch@autresite.be does not exist" told monsite which addresses autresite has.
    box = create_mailbox(
        monsite.actor, monsite.domain, password=STRONG, forward_to=["nosuch@autresite.be"]
    ).mailbox
    assert box.forward_to == ["nosuch@autresite.be"]
    aliases.create_alias(monsite.actor, monsite.domain, "x", forward_to=["nosuch@autresite.be"])
    # Within one's own domains, a typo is still caught.
    with pytest.raises(ValidationError) as typo:
        create_mailbox(
            monsite.actor, monsite.domain, password=STRONG, forward_to=["nosuch@monsite.be"]
        )
    assert "does not exist here" in typo.value.message
    page = owner_browser.post(
        "/d/monsite.be/users/new/",
        {
            "primary_local_part": "x1",
            "login": theirs.login,
            "password_0": "value",
            "password_1": STRONG,
            "quota_0": "none",
            "primary_enabled": "True",
            "deliver_normally": "on",
        },
    ).content.decode()
    assert "is not available" in page and "already taken" not in page


def test_tokens_of_another_person_stay_unknown(monsite: Customer, autre: Customer) -> None:
    token = create_token(autre.actor, "theirs").token
    from courriel.api.tokens import revoke_token

    with pytest.raises(NotFoundError) as refused:
        revoke_token(monsite.actor, token.pk)
    assert "theirs" not in refused.value.message and "autresite" not in refused.value.message


def test_a_long_batch_import_shows_its_progress_without_javascript(
    owner_browser: Browser, monsite: Customer
) -> None:
    text = "\n".join(f"user{n}:User {n}:" for n in range(60))
    response = owner_browser.post("/d/monsite.be/users/batch/", {"text": text})
    assert response.streaming and "no-store" in response["Cache-Control"]
    page = b"".join(response.streaming_content).decode()
    assert page.count("<progress") == 60 and "60 of 60 lines" in page
    assert "10 mailboxes created" in page  # the recommended plan's limit
    assert "refused: " in page and page.rstrip().endswith("</html>")
    too_many = "\n".join(f"user{n}:User {n}:" for n in range(10_001))
    refused = owner_browser.post("/d/monsite.be/users/batch/", {"text": too_many})
    assert "At most 10000 mailboxes at once" in refused.content.decode()
