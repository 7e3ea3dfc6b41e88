"""Issue 16, item 1: the addresses and ports a customer is given are the ones this
installation listens on, the same on the set-up page and mail, the account mail, My
account, Edit Mailbox and in every autoconfiguration format; and the set-up mail
never goes into the very domain whose password it carries."""

from __future__ import annotations

import html
import plistlib
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from django.test import Client

from courriel.accounts.models import HostingServer, Mailbox
from courriel.config import get_config
from tests.fixtures.accounts import Customer
from tests.fixtures.api import Api
from tests.fixtures.panel import Browser, signed_in
from tests.panel.test_account_mail import body, notices

PORTS = {"web": 4443, "imaps": 1993, "pop3s": 1995, "submission": 1587}
HOST = "maximusconfessor.all2all.org"
PANEL = f"https://{HOST}:4443/"

SET_UP = {
    "en": ("Administration URL", "IMAP server (receiving)", "port 1993 (SSL/TLS)"),
    "fr": ("URL d'administration", "Serveur IMAP (réception)", "port 1993 (SSL/TLS)"),
    "nl": ("Beheer-URL", "IMAP-server (ontvangen)", "poort 1993 (SSL/TLS)"),
}
WITHHELD = {
    "en": "Nothing was e-mailed: the contact address monsite@monsite.be is in monsite.be itself",
    "fr": "Rien n'a été envoyé : l'adresse de contact monsite@monsite.be est dans monsite.be",
    "nl": "Er is niets gemaild: het contactadres monsite@monsite.be ligt in monsite.be zelf",
}


@pytest.fixture
def listeners(monkeypatch: pytest.MonkeyPatch) -> None:
    """This installation listens on other ports than the usual ones."""
    config = get_config()
    for section, port in PORTS.items():
        monkeypatch.setitem(getattr(config, section), "port", port)


def new_domain(**changes: str) -> dict[str, str]:
    data = {
        "name": "monsite.be",
        "plan": "recommended",
        "server": "maximusconfessor",
        "password_0": "none",
        "contact_email": "monsite@gmail.com",
        "description": "Monsite",
        "features": "mail",
    }
    data.update(changes)
    return data


def page(response: Any) -> str:
    return html.unescape(response.content.decode())


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_the_set_up_page_and_mail_name_this_installation_s_ports(
    provider_browser: Browser,
    servers: list[HostingServer],
    listeners: None,
    django_capture_on_commit_callbacks: Any,
    language: str,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = provider_browser.post(
            "/provider/domains/new/", new_domain(), HTTP_ACCEPT_LANGUAGE=language
        )
    assert response.status_code == 200
    shown = page(response)
    label, imap_label, imap = SET_UP[language]
    assert label in shown and PANEL in shown and imap_label in shown and imap in shown
    for port in ("1587", "1995"):
        assert port in shown
    assert "10000" not in shown and ":587" not in shown and " 993" not in shown
    ((recipients, message),) = [n for n in notices() if "monsite.be" in n[1]["Subject"]]
    assert recipients == ["monsite@gmail.com"]
    text = body(message)
    assert PANEL in text and "1993" in text and "1995" in text and "1587" in text
    assert "10000" not in text and " 993" not in text


def test_public_url_and_the_server_s_own_url(
    provider_browser: Browser,
    servers: list[HostingServer],
    listeners: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(get_config().web, "public_url", "https://panel.all2all.org")
    shown = page(provider_browser.post("/provider/domains/new/", new_domain()))
    assert "https://panel.all2all.org/" in shown and PANEL not in shown
    HostingServer.objects.filter(name="moses").update(admin_url="https://moses.all2all.org/")
    shown = page(
        provider_browser.post("/provider/domains/new/", new_domain(name="autre.be", server="moses"))
    )
    assert "https://moses.all2all.org/" in shown
    servers_page = page(provider_browser.get("/provider/servers/"))
    assert "https://moses.all2all.org/" in servers_page
    assert "https://panel.all2all.org/" in servers_page


def post_domain(api: Api, body: dict[str, str], language: str = "en") -> Any:
    return api.client.post(
        "/api/v1/domains",
        body,
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE=language,
        secure=True,
        **api.headers,
    )


def test_the_api_gives_stable_keys_in_every_language(
    servers: list[HostingServer], listeners: None, provider_api: Api
) -> None:
    for language in ("en", "fr", "nl"):
        response = post_domain(
            provider_api,
            {"name": f"site-{language}.be", "plan": "recommended", "server": "moses"},
            language,
        )
        assert response.status_code == 201, response.content
        setup = response.json()["setup"]
        assert set(setup) == {
            "domain",
            "hosting_server",
            "admin_login",
            "admin_password",
            "admin_url",
            "mail_domain",
            "smtp_server",
            "imap_server",
            "pop3_server",
        }
        assert setup["admin_url"] == "https://moses.all2all.org:4443/"
        assert "1993" in setup["imap_server"]


def test_my_account_edit_mailbox_and_autoconfig_agree(
    monsite: Customer, info: Mailbox, listeners: None
) -> None:
    for language in ("en", "fr", "nl"):
        for browser, url in (
            (signed_in(info), "/me/"),
            (signed_in(monsite.owner), "/d/monsite.be/user/monsite0001/"),
        ):
            shown = page(browser.get(url, HTTP_ACCEPT_LANGUAGE=language))
            for port in ("1993", "1995", "1587"):
                assert f'<td class="num">{port}</td>' in shown, (url, language)
            assert PANEL in shown and "monsite0001" in shown
    xml = Client().get(
        "/.well-known/autoconfig/mail/config-v1.1.xml", {"emailaddress": "info@monsite.be"}
    )
    ports = {s.get("type"): s.findtext("port") for s in ET.fromstring(xml.content).iter()}
    assert ports["imap"] == "1993" and ports["pop3"] == "1995" and ports["smtp"] == "1587"
    profile = plistlib.loads(signed_in(info).get("/me/mobileconfig").content)
    account = profile["PayloadContent"][0]
    assert account["IncomingMailServerPortNumber"] == 1993
    assert account["OutgoingMailServerPortNumber"] == 1587


def test_without_implicit_tls_the_starttls_ports_are_given(
    monsite: Customer, info: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = get_config()
    monkeypatch.setitem(config.imaps, "enabled", False)
    monkeypatch.setitem(config.pop3s, "enabled", False)
    monkeypatch.setitem(config.pop3, "enabled", False)
    monkeypatch.setitem(config.imap, "port", 1143)
    shown = page(signed_in(info).get("/me/"))
    assert '<td class="num">1143</td><td>STARTTLS</td>' in shown
    assert "POP3" not in shown


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_the_set_up_mail_never_goes_into_the_new_domain(
    provider_browser: Browser,
    servers: list[HostingServer],
    django_capture_on_commit_callbacks: Any,
    language: str,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = provider_browser.post(
            "/provider/domains/new/",
            new_domain(contact_email="monsite@monsite.be"),
            HTTP_ACCEPT_LANGUAGE=language,
        )
    assert WITHHELD[language] in page(response)
    assert [n for n in notices() if "monsite.be" in n[1]["Subject"]] == []


def test_the_api_says_the_set_up_mail_was_withheld(
    servers: list[HostingServer], provider_api: Api
) -> None:
    response = post_domain(
        provider_api,
        {"name": "monsite.be", "plan": "recommended", "contact_email": "info@monsite.be"},
    )
    assert response.status_code == 201
    answer = response.json()
    assert answer["setup_mail_sent_to"] is None
    assert answer["setup_mail_withheld"] == "info@monsite.be"
