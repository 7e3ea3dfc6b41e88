"""Chapter 10 (Edit Mail Aliases, basic mode) and chapter 11's "Change Passwords"."""

from __future__ import annotations

import html

import pytest

from courriel.accounts.models import Alias, Mailbox
from courriel.accounts.services.aliases import get_alias
from courriel.accounts.services.mailboxes import authenticate
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.panel import Browser

ALIASES = "/d/monsite.be/aliases/"


def alias_form(**values: str) -> dict[str, str]:
    return {"name_mode": "one", **values}


def test_the_four_default_aliases_point_to_the_owner(
    owner_browser: Browser, monsite: Customer
) -> None:
    page = owner_browser.text(ALIASES)
    for name in ("abuse", "hostmaster", "postmaster", "webmaster"):
        assert f'value="{name}"' in page
    assert page.count("Mailbox monsite") == 4
    assert "Add an alias to this domain." in page and "Delete Selected Aliases" in page


def test_chapter_10_forward_to_an_external_address(
    owner_browser: Browser, monsite: Customer
) -> None:
    page = owner_browser.text(ALIASES + "new/")
    for label in (
        "Catch-all: any address of the domain that is not listed",
        "Deliver locally?",
        "Bounce mail?",
        "Forward to other address?",
        "Forward to everyone in domain?",
    ):
        assert label in page
    response = owner_browser.post(
        ALIASES + "new/",
        alias_form(name="frederic", forward="on", forward_to="frederic@gmail.com"),
    )
    assert response.status_code == 302
    alias = get_alias(monsite.actor, monsite.domain, "frederic")
    assert alias.forward_to == ["frederic@gmail.com"]
    assert "Address frederic@gmail.com" in owner_browser.text(ALIASES)


def test_catch_all_bounce_and_everyone(owner_browser: Browser, info: Mailbox) -> None:
    assert (
        owner_browser.post(
            ALIASES + "new/",
            {"name_mode": "all", "deliver": "on", "mailboxes": "monsite0001"},
        ).status_code
        == 302
    )
    assert (
        owner_browser.post(
            ALIASES + "new/",
            alias_form(name="old", bounce="on", bounce_message="No longer in use."),
        ).status_code
        == 302
    )
    assert (
        owner_browser.post(ALIASES + "new/", alias_form(name="all", everyone="on")).status_code
        == 302
    )
    page = owner_browser.text(ALIASES)
    assert "Catch-all (any other address)" in page and "Mailbox monsite0001" in page
    assert "Bounce: No longer in use." in page and "Everyone in the domain" in page
    assert owner_browser.get(ALIASES.replace("aliases", "alias") + "*/").status_code == 200


CATCH_ALL = {
    "en": ("Catch-all: any address of the domain that is not listed", "Send to every mailbox"),
    "fr": (
        "Attrape-tout : toute adresse du domaine qui n'est pas dans la liste",
        "Envoyer à chaque boîte",
    ),
    "nl": ("Catch-all: elk adres van het domein dat niet in de lijst staat", "Naar elke mailbox"),
}


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_catch_all_and_everyone_are_told_apart(
    owner_browser: Browser, monsite: Customer, language: str
) -> None:
    """Issue 16, item 5: the catch-all was labelled "All mailboxes" on the very form
    whose "Forward to everyone in domain?" sends to all mailboxes."""
    page = html.unescape(
        owner_browser.get(ALIASES + "new/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    )
    catch_all, everyone = CATCH_ALL[language]
    assert catch_all in page and everyone in page
    assert "All mailboxes" not in page and "Toutes les boîtes" not in page
    assert "Alle mailboxen" not in page


def test_alias_errors(owner_browser: Browser, monsite: Customer) -> None:
    cases = [
        (alias_form(name=""), "Type the alias name"),
        (alias_form(name="x"), "Choose where the alias sends mail"),
        (alias_form(name="x", bounce="on", everyone="on"), "cannot also deliver"),
        (alias_form(name="abuse", everyone="on"), "already exists as an alias"),
        (alias_form(name="monsite", everyone="on"), "already an address of mailbox monsite"),
        (alias_form(name="x", deliver="on", mailboxes="ghost"), "No mailbox"),
        (alias_form(name="bad name", everyone="on"), "is not a valid address name"),
    ]
    before = Alias.objects.count()
    for data, message in cases:
        response = owner_browser.post(ALIASES + "new/", data)
        assert response.status_code == 200 and message in response.content.decode(), message
    assert Alias.objects.count() == before


def test_edit_and_rename_an_alias(owner_browser: Browser, monsite: Customer) -> None:
    url = "/d/monsite.be/alias/webmaster/"
    page = owner_browser.text(url)
    assert 'value="webmaster"' in page and "monsite" in page
    response = owner_browser.post(
        url,
        alias_form(
            name="web",
            deliver="on",
            mailboxes="monsite",
            forward="on",
            forward_to="dev@example.org",
        ),
    )
    assert response.status_code == 302
    alias = get_alias(monsite.actor, monsite.domain, "web")
    assert alias.forward_to == ["dev@example.org"]
    assert owner_browser.get(url).status_code == 404


def test_delete_selected_aliases_asks_first(owner_browser: Browser, monsite: Customer) -> None:
    url = ALIASES + "delete/"
    ask = owner_browser.post(url, {"selected": ["abuse", "webmaster"]})
    assert "Delete 2 aliases" in ask.content.decode()
    assert "abuse@monsite.be" in ask.content.decode()
    owner_browser.post(url, {"selected": ["abuse", "webmaster"], "confirm": "yes"})
    remaining = sorted(
        a.addresses.get().local_part for a in Alias.objects.filter(domain=monsite.domain)
    )
    assert remaining == ["hostmaster", "postmaster"]
    assert owner_browser.post(url, {"selected": "ghost", "confirm": "yes"}).status_code == 404


def test_aliases_list_search(owner_browser: Browser, monsite: Customer) -> None:
    page = owner_browser.text(ALIASES, q="post")
    assert 'value="postmaster"' in page and 'value="abuse"' not in page


def test_chapter_11_change_passwords_page(owner_browser: Browser, info: Mailbox) -> None:
    pick = owner_browser.text("/d/monsite.be/passwords/")
    assert "Select a user to change his or her password" in pick
    assert "/d/monsite.be/password/monsite0001/" in pick
    url = "/d/monsite.be/password/monsite0001/"
    page = owner_browser.text(url)
    assert "Changing password for monsite0001 (Info)" in page
    assert "New password (again)" in page and "Return to user list" in page
    differ = owner_browser.post(url, {"password": "N3w-Pass-phrase!", "password_again": "other"})
    assert "The two passwords differ." in differ.content.decode()
    weak = owner_browser.post(url, {"password": "short", "password_again": "short"})
    assert "too short" in weak.content.decode()
    assert authenticate("monsite0001", STRONG).ok
    done = owner_browser.post(
        url, {"password": "N3w-Pass-phrase!", "password_again": "N3w-Pass-phrase!"}, follow=True
    )
    assert "The password of monsite0001 is changed." in done.content.decode()
    assert authenticate("monsite0001", "N3w-Pass-phrase!").ok
