"""Issue 16, item 2: "who gets mail for X?" is answered from Mail Users and Mail
Aliases by the one address resolution, with its trace, in the reader's language; the
additional addresses are listed among the aliases (the manual's "info → monsite0001");
another customer's addresses and mailboxes stay out of sight."""

from __future__ import annotations

import html

import pytest

from courriel.accounts.models import Mailbox
from courriel.accounts.services.aliases import create_alias
from courriel.accounts.services.mailboxes import create_mailbox, modify_mailbox
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.panel import Browser

USERS = "/d/monsite.be/users/"
ALIASES = "/d/monsite.be/aliases/"

ANSWER = {
    "en": (
        "Who gets mail for info@monsite.be?",
        "Mail to info@monsite.be is accepted:",
        "info@monsite.be: mailbox monsite0001",
        "(additional address)",
    ),
    "fr": (
        "Qui reçoit le courrier pour info@monsite.be ?",
        "Le courrier pour info@monsite.be est accepté :",
        "info@monsite.be : boîte mail monsite0001",
        "(adresse supplémentaire)",
    ),
    "nl": (
        "Wie ontvangt de mail voor info@monsite.be?",
        "Mail voor info@monsite.be wordt aanvaard:",
        "info@monsite.be: mailbox monsite0001",
        "(extra adres)",
    ),
}


def text(browser: Browser, url: str, language: str = "en", **params: str) -> str:
    response = browser.get(url, params or None, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200, url
    return html.unescape(response.content.decode())


@pytest.fixture
def addresses(monsite: Customer, info: Mailbox) -> Mailbox:
    """The manual's chapter 7: info@, contact@ and information@ reach monsite0001."""
    return modify_mailbox(monsite.actor, info, addresses=["info", "contact", "information"])


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_mail_users_finds_a_mailbox_by_any_of_its_addresses(
    owner_browser: Browser, addresses: Mailbox, language: str
) -> None:
    for term in ("contact", "info@monsite.be", "INFORMATION@monsite.be"):
        page = text(owner_browser, USERS, language, q=term)
        assert 'id="user-monsite0001"' in page, term
        assert 'id="user-monsite"' not in page, term
    title, accepted, step, _ = ANSWER[language]
    page = text(owner_browser, USERS, language, q="info@monsite.be")
    assert title in page and accepted in page and step in page
    assert "monsite0001" in page.split(title)[1]
    # A name search is no address: no answer box, just the list.
    nothing = text(owner_browser, USERS, language, q="Inf")
    assert 'id="user-monsite0001"' in nothing and title not in nothing


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_mail_aliases_lists_the_additional_addresses(
    owner_browser: Browser, addresses: Mailbox, language: str
) -> None:
    *_, additional = ANSWER[language]
    page = text(owner_browser, ALIASES, language)
    for name in ("abuse", "contact", "info", "information", "postmaster"):
        assert f">{name}<" in page, name
    assert additional in page
    assert page.index(">contact<") < page.index(">info<") < page.index(">postmaster<")
    found = text(owner_browser, ALIASES, language, q="contact")
    assert ">contact<" in found and ">abuse<" not in found
    title, *_ = ANSWER[language]
    assert title.replace("info@", "contact@") in found


def test_the_trace_follows_aliases_and_forwards(
    owner_browser: Browser, monsite: Customer, addresses: Mailbox
) -> None:
    create_alias(
        monsite.actor,
        monsite.domain,
        "equipe",
        mailboxes=["monsite"],
        forward_to=["info@monsite.be"],
    )
    create_alias(monsite.actor, monsite.domain, "frederic", forward_to=["frederic@gmail.com"])
    page = text(owner_browser, ALIASES, q="equipe")
    for line in (
        "equipe@monsite.be: alias",
        "equipe@monsite.be: mailbox monsite",
        "info@monsite.be: mailbox monsite0001",
    ):
        assert line in page, line
    page = text(owner_browser, USERS, q="frederic@monsite.be")
    assert "forwarded to frederic@gmail.com" in page
    unknown = text(owner_browser, USERS, q="personne@monsite.be")
    assert "personne@monsite.be does not exist" in unknown


def test_another_customer_stays_out_of_sight(
    owner_browser: Browser,
    provider_browser: Browser,
    monsite: Customer,
    autre: Customer,
    addresses: Mailbox,
) -> None:
    secret = create_mailbox(
        autre.actor, autre.domain, login="cachee", password=STRONG, addresses=["ventes"]
    ).mailbox
    create_alias(monsite.actor, monsite.domain, "partenaire", forward_to=["ventes@autresite.be"])
    page = text(owner_browser, ALIASES, q="partenaire")
    assert "ventes@autresite.be: handled by another customer's domain" in page
    assert "a copy in 1 mailbox of another customer's domain" in page
    assert secret.login not in page and "autresite0001" not in page
    # Their addresses cannot be asked about, and are not listed.
    for url in (USERS, ALIASES):
        other = text(owner_browser, url, q="ventes@autresite.be")
        assert "Who gets mail" not in other and "cachee" not in other
        assert ">ventes<" not in other
    # The provider sees the whole way.
    page = text(provider_browser, ALIASES, q="partenaire")
    assert "ventes@autresite.be: mailbox cachee" in page
