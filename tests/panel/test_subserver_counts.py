"""Issue 16, item 7: a sub-server's pages showed the customer-wide counts ("Mailboxes
1 out of 10, Mail aliases 10" with no mailbox and 4 aliases of its own), and its empty
list said "No mailboxes match." though nothing was searched."""

from __future__ import annotations

import html
import re

import pytest

from courriel.accounts.models import Mailbox
from courriel.accounts.services.domains import create_domain
from tests.fixtures.accounts import Customer
from tests.fixtures.panel import Browser

OWN = {"en": "In monsite.eu", "fr": "Dans monsite.eu", "nl": "In monsite.eu"}
PLAN = {
    "en": "Plan of monsite.be, shared with its sub-servers",
    "fr": "Formule de monsite.be, partagée avec ses sous-serveurs",
    "nl": "Pakket van monsite.be, gedeeld met zijn subservers",
}
OUT_OF = {"en": "1 out of 10", "fr": "1 sur 10", "nl": "1 van 10"}
EMPTY = {"en": "No mailboxes yet.", "fr": "Pas encore de boîte mail.", "nl": "Nog geen mailboxen."}
NONE_MATCH = {
    "en": "No mailboxes match.",
    "fr": "Aucune boîte mail ne correspond.",
    "nl": "Geen mailboxen gevonden.",
}


def facts(page: str, section: str) -> dict[str, str]:
    """The <dt>/<dd> pairs of one card of the page."""
    card = page.split(f'id="{section}"', 1)[1].split("</section>", 1)[0]
    return dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", card))


@pytest.fixture
def subserver(monsite: Customer, info: Mailbox) -> None:
    create_domain(monsite.actor, "monsite.eu", parent=monsite.domain)


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_a_sub_server_shows_its_own_counts_and_the_plan_s_apart(
    owner_browser: Browser, subserver: None, language: str
) -> None:
    page = html.unescape(
        owner_browser.get("/d/monsite.eu/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    )
    assert OWN[language] in page and PLAN[language] in page
    own = list(facts(page, "own-counts").values())
    assert own == ["0", "4", "0"]  # no mailbox, the four default aliases, no domain alias
    plan = list(facts(page, "plan-counts").values())
    assert plan[0].startswith("2") and plan[1] == OUT_OF[language] and plan[2] == "8"
    # The parent, with a sub-server, tells its own apart too.
    parent = html.unescape(
        owner_browser.get("/d/monsite.be/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    )
    assert list(facts(parent, "own-counts").values()) == ["1", "4", "0"]


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_an_empty_list_is_not_a_failed_search(
    owner_browser: Browser, subserver: None, language: str
) -> None:
    users = owner_browser.get("/d/monsite.eu/users/", HTTP_ACCEPT_LANGUAGE=language)
    text = html.unescape(users.content.decode())
    assert EMPTY[language] in text and NONE_MATCH[language] not in text
    searched = owner_browser.get(
        "/d/monsite.eu/users/", {"q": "zzz"}, HTTP_ACCEPT_LANGUAGE=language
    )
    assert NONE_MATCH[language] in html.unescape(searched.content.decode())
