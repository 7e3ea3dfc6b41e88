"""Issue 16, item 3: the *Enabled features* offer only what the platform does. Website,
SSL, DNS domain and log rotation were only stored (and virus filtering before issue
12); mail is always on; spam filtering is offered where a spam filter is set up."""

from __future__ import annotations

import html
import importlib

import pytest
from django.apps import apps

from courriel.accounts.models import Domain, HostingServer
from courriel.config import get_config
from tests.fixtures.accounts import Customer
from tests.fixtures.api import Api
from tests.fixtures.panel import Browser

GONE = {
    "en": ("Website", "SSL website", "DNS domain", "Log file rotation", "Virus"),
    "fr": ("Site web", "Site web SSL", "Domaine DNS", "Rotation des journaux", "virus"),
    "nl": ("Website", "SSL-website", "DNS-domein", "Rotatie van logbestanden", "virus"),
}
UNAVAILABLE = {
    "en": "Spam filtering is not available: no spam filter is set up on this platform.",
    "fr": "Le filtrage du spam n'est pas disponible : aucun filtre anti-spam n'est installé",
    "nl": "Spamfiltering is niet beschikbaar: er is op dit platform geen spamfilter",
}


@pytest.fixture
def spam_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(get_config().filter, "rspamd_url", "http://127.0.0.1:11333")


def shown(browser: Browser, url: str, language: str) -> str:
    response = browser.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_without_a_spam_filter_nothing_is_offered(
    owner_browser: Browser, provider_browser: Browser, monsite: Customer, language: str
) -> None:
    details = shown(owner_browser, "/d/monsite.be/details/", language)
    create = shown(provider_browser, "/provider/domains/new/", language)
    for page in (details, create):
        assert 'name="features"' not in page
        for label in GONE[language]:
            assert f">{label}<" not in page and f"> {label}</label>" not in page, label
    assert UNAVAILABLE[language] in details


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_with_a_spam_filter_only_spam_filtering_is_offered(
    owner_browser: Browser, monsite: Customer, spam_filter: None, language: str
) -> None:
    page = shown(owner_browser, "/d/monsite.be/details/", language)
    assert page.count('name="features"') == 1 and 'value="spam"' in page
    assert UNAVAILABLE[language] not in page


def test_spam_filtering_is_switched_off_and_on(
    owner_browser: Browser, monsite: Customer, spam_filter: None
) -> None:
    details = {"description": "Monsite", "contact_email": ""}
    assert owner_browser.post("/d/monsite.be/details/", details).status_code == 302
    assert Domain.objects.get(name="monsite.be").features == ["mail"]
    owner_browser.post("/d/monsite.be/details/", {**details, "features": ["spam"]})
    assert Domain.objects.get(name="monsite.be").features == ["mail", "spam"]


def test_the_api_refuses_what_does_not_exist(owner_api: Api, monsite: Customer) -> None:
    status, answer = owner_api.patch("/domains/monsite.be", {"features": ["mail", "web"]})
    assert status == 400 and "Unknown feature 'web'" in answer["detail"]
    status, answer = owner_api.patch("/domains/monsite.be", {"features": ["mail", "spam"]})
    assert status == 400 and "Spam filtering is not available" in answer["detail"]
    # What the API shows is what is on: spam filtering is asked for by default, and
    # happens only where a spam filter is set up.
    assert Domain.objects.get(name="monsite.be").features == ["mail", "spam"]
    assert owner_api.get("/domains/monsite.be")[1]["features"] == ["mail"]


def test_the_api_shows_spam_filtering_where_it_exists(
    owner_api: Api, monsite: Customer, spam_filter: None
) -> None:
    assert owner_api.get("/domains/monsite.be")[1]["features"] == ["mail", "spam"]
    status, _ = owner_api.patch("/domains/monsite.be", {"features": ["mail"]})
    assert status == 200 and Domain.objects.get(name="monsite.be").features == ["mail"]


def test_the_migration_drops_stored_promises(
    servers: list[HostingServer], monsite: Customer
) -> None:
    Domain.objects.filter(pk=monsite.domain.pk).update(
        features=["dns", "web", "spam", "ssl", "logrotate"]
    )
    migration = importlib.import_module("courriel.panel.migrations.0001_drop_unoffered_features")
    migration.drop_unoffered(apps, None)
    assert Domain.objects.get(pk=monsite.domain.pk).features == ["mail", "spam"]
