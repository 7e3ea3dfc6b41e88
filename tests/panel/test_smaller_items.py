"""Issue 16, item 8, the smaller stumbles: with one hosting server the provider need
not pick it; on a phone the page comes before the 16-link menu; domain aliases have a
menu entry. (The folder restore is in test_backup_pages.py, the owner's table of
servers and ports in test_connection_facts.py, the phone layout in a real browser in
test_browser.py.)"""

from __future__ import annotations

import html

import pytest

from courriel.accounts.models import Domain, HostingServer
from tests.fixtures.accounts import Customer
from tests.fixtures.panel import Browser


@pytest.fixture
def one_server(plans: None) -> HostingServer:
    return HostingServer.objects.create(name="moses", hostname="moses.all2all.org")


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_with_one_hosting_server_it_is_already_chosen(
    provider_browser: Browser, one_server: HostingServer, language: str
) -> None:
    page = provider_browser.get(
        "/provider/domains/new/", HTTP_ACCEPT_LANGUAGE=language
    ).content.decode()
    assert '<option value="moses" selected>' in page
    response = provider_browser.post(
        "/provider/domains/new/",
        {"name": f"site-{language}.be", "plan": "simple", "password_0": "none"},
        HTTP_ACCEPT_LANGUAGE=language,
    )
    assert response.status_code == 200
    assert Domain.objects.get(name=f"site-{language}.be").server == one_server


def test_with_several_servers_the_provider_chooses_or_leaves_it_to_us(
    provider_browser: Browser, servers: list[HostingServer]
) -> None:
    page = html.unescape(provider_browser.get("/provider/domains/new/").content.decode())
    assert '<option value="" selected>' in page.split('id="id_server"')[1]
    assert "Automatic: this machine, or the server with the fewest domains" in page


def test_the_page_comes_before_the_menu(owner_browser: Browser, monsite: Customer) -> None:
    page = owner_browser.get("/d/monsite.be/users/").content.decode()
    assert page.index('<main id="main"') < page.index('<nav class="side" id="menu"')
    assert '<a class="menu-link" href="#menu">' in page


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_domain_aliases_have_a_menu_entry(
    owner_browser: Browser, monsite: Customer, language: str
) -> None:
    labels = {"en": "Domain aliases", "fr": "Alias de domaine", "nl": "Domeinaliassen"}
    page = html.unescape(
        owner_browser.get("/d/monsite.be/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    )
    menu = page.split('<nav class="side"', 1)[1]
    assert f'<a href="/d/monsite.be/details/#domain-aliases">{labels[language]}</a>' in menu
