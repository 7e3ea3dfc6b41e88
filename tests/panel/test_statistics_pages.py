"""Issue 16, the Statistics pages: the provider's (every domain) and an owner's (their
domains), as SVG charts drawn on the server with their figures in a table beside each,
in three languages, without script, and without another customer's figures."""

from __future__ import annotations

import html
import re
from xml.etree import ElementTree as ET

import pytest

from courriel.accounts.models import Mailbox
from courriel.accounts.services.domains import create_domain
from courriel.config import get_config
from courriel.mailstore.layout import create_maildir
from courriel.stats import counters
from courriel.stats.service import sample_disk_usage
from tests.fixtures.accounts import Customer
from tests.fixtures.panel import Browser, signed_in

SVG = re.compile(r"<svg.*?</svg>", re.S)
TITLES = {
    "en": ("Statistics", "Messages per hour, last 48 hours", "Received", "Unknown recipient"),
    "fr": (
        "Statistiques",
        "Messages par heure, 48 dernières heures",
        "Reçus",
        "Destinataire inconnu",
    ),
    "nl": ("Statistieken", "Berichten per uur, laatste 48 uur", "Ontvangen", "Onbekende ontvanger"),
}


@pytest.fixture
def counted(monsite: Customer, autre: Customer, info: Mailbox) -> None:
    with counters._lock:
        counters._pending.clear()
    counters.forget_hosted_names()
    create_domain(monsite.actor, "monsite.eu", parent=monsite.domain)
    counters.count("received", "monsite.be", n=3)
    counters.count("received", "monsite.eu", n=2)
    counters.count("delivered", "monsite.be", n=3)
    counters.count("refused", "monsite.be", "unknown_recipient", n=4)
    counters.count("received", "autresite.be", n=7)
    counters.count("refused", "autresite.be", "spam", n=11)
    counters.count("refused", "gmail.com", "relay_denied", n=13)
    counters.flush()
    root = get_config().mail_root
    for mailbox in Mailbox.objects.all():  # made on commit, which a test never reaches
        create_maildir(mailbox.maildir_path(root))
    sample_disk_usage()


def page(browser: Browser, url: str, language: str = "en", **params: str) -> str:
    response = browser.get(url, params or None, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200, url
    return html.unescape(response.content.decode())


def totals(text: str) -> dict[str, tuple[str, str]]:
    table = text.split('class="totals"', 1)[1].split("</table>", 1)[0]
    found = re.findall(
        r'<th scope="row">(.*?)</th><td class="num">(\d*)</td><td class="num">(\d*)</td>', table
    )
    return {label: (hours, days) for label, hours, days in found}


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_the_owner_s_statistics(owner_browser: Browser, counted: None, language: str) -> None:
    text = page(owner_browser, "/d/monsite.be/statistics/", language)
    title, per_hour, received, unknown = TITLES[language]
    assert f"<h1>{title}</h1>" in text and per_hour in text and unknown in text
    assert totals(text)[received] == ("5", "5")  # monsite.be and monsite.eu
    charts = SVG.findall(text)
    assert len(charts) == 5  # per hour, per day, refusals twice, disk use; no queue
    for chart in charts:
        root = ET.fromstring(chart)  # well-formed
        assert root.get("role") == "img" and root.get("aria-labelledby")
        assert root.find("{http://www.w3.org/2000/svg}title") is not None
        assert "style=" not in chart and "<script" not in chart
    # Each chart has its figures in a table beside it.
    assert text.count('class="table-wrap chart-data"') == 5
    assert '<td class="num">4</td>' in text.split('id="refused-48h"')[1]
    assert "monsite0001" in text or "monsite.be" in text.split('id="disk"')[1]


def test_another_customer_s_figures_stay_out(owner_browser: Browser, counted: None) -> None:
    text = page(owner_browser, "/d/monsite.be/statistics/")
    assert "autresite.be" not in text and "Spam" not in text and "relaying" not in text
    assert totals(text)["Refused"] == ("4", "4")
    # Asking for another customer's domain shows one's own again.
    asked = page(owner_browser, "/d/monsite.be/statistics/", domain="autresite.be")
    assert totals(asked)["Received"] == ("5", "5")
    assert owner_browser.get("/d/autresite.be/statistics/").status_code == 404


def test_one_domain_of_the_family(owner_browser: Browser, counted: None) -> None:
    text = page(owner_browser, "/d/monsite.be/statistics/", domain="monsite.eu")
    assert totals(text)["Received"] == ("2", "2")
    one = page(owner_browser, "/d/monsite.be/statistics/", domain="monsite.be")
    assert "Disk use per mailbox, last 90 days" in one and "monsite0001" in one


def test_the_provider_sees_every_domain_and_the_queue(
    provider_browser: Browser, counted: None
) -> None:
    text = page(provider_browser, "/provider/statistics/")
    assert totals(text)["Received"] == ("12", "12") and totals(text)["Refused"] == ("28", "28")
    assert "Messages waiting in the outbound queue, last 48 hours" in text
    assert len(SVG.findall(text)) == 6
    assert "Not for a domain hosted here (relaying refused)" in text
    one = page(provider_browser, "/provider/statistics/", domain="autresite.be")
    assert totals(one)["Received"] == ("7", "7") and "outbound queue" not in one


def test_mailbox_users_have_no_statistics(info: Mailbox, counted: None) -> None:
    browser = signed_in(info)
    assert browser.get("/d/monsite.be/statistics/").status_code == 404
    assert browser.get("/provider/statistics/").status_code == 404


def test_the_menu_leads_there(
    owner_browser: Browser, provider_browser: Browser, counted: None
) -> None:
    assert 'href="/d/monsite.be/statistics/"' in page(owner_browser, "/d/monsite.be/")
    assert 'href="/provider/statistics/"' in page(provider_browser, "/")
