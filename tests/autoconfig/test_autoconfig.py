"""Mail clients configure themselves: Thunderbird's autoconfig, Outlook's autodiscover
and Apple's profile, all naming the domain's hosting server."""

from __future__ import annotations

import plistlib
from xml.etree import ElementTree as ET

from django.test import Client

from courriel.accounts.models import HostingServer, Mailbox
from courriel.accounts.services.domains import add_domain_alias, modify_domain
from courriel.accounts.services.ownership import approve
from courriel.config import get_config
from tests.fixtures.accounts import Customer
from tests.fixtures.panel import Browser

OUTLOOK = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


def test_thunderbird_autoconfig_by_address(monsite: Customer) -> None:
    response = Client().get(
        "/.well-known/autoconfig/mail/config-v1.1.xml", {"emailaddress": "info@monsite.be"}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    provider = root.find("emailProvider")
    assert provider is not None and provider.get("id") == "monsite.be"
    servers = {s.get("type"): s for s in provider if s.tag.endswith("Server")}
    assert set(servers) == {"imap", "pop3", "smtp"}
    imap = servers["imap"]
    assert imap.findtext("hostname") == "maximusconfessor.all2all.org"
    assert imap.findtext("port") == str(get_config().imaps.port)
    assert imap.findtext("socketType") == "SSL"
    assert imap.findtext("username") == "%EMAILADDRESS%"
    assert servers["smtp"].findtext("socketType") == "STARTTLS"


def test_thunderbird_autoconfig_by_host_name_and_domain_alias(
    provider,
    monsite: Customer,  # type: ignore[no-untyped-def]
) -> None:
    add_domain_alias(monsite.actor, monsite.domain, "monsite.eu")
    modify_domain(provider, monsite.domain, server="moses")
    pending = Client().get("/mail/config-v1.1.xml", HTTP_HOST="autoconfig.monsite.eu")
    assert pending.status_code == 404  # not monsite's until proven or approved
    approve(provider, "monsite.eu")
    response = Client().get("/mail/config-v1.1.xml", HTTP_HOST="autoconfig.monsite.eu")
    assert response.status_code == 200
    assert b"moses.all2all.org" in response.content


def test_unknown_domains_are_not_found(monsite: Customer) -> None:
    client = Client()
    url = "/.well-known/autoconfig/mail/config-v1.1.xml"
    assert client.get(url, {"emailaddress": "x@gmail.com"}).status_code == 404
    assert client.get(url, {"emailaddress": "not an address"}).status_code == 404
    assert client.get("/mail/config-v1.1.xml", HTTP_HOST="autoconfig.gmail.com").status_code == 404


def test_outlook_autodiscover(monsite: Customer) -> None:
    request = (
        b'<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/'
        b'autodiscover/outlook/requestschema/2006"><Request><EMailAddress>monsite@monsite.be'
        b"</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/"
        b"autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request>"
        b"</Autodiscover>"
    )
    client = Client(enforce_csrf_checks=True)  # Outlook has no CSRF token
    response = client.post(
        "/autodiscover/autodiscover.xml", request, content_type="text/xml", secure=True
    )
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    protocols = {p.findtext(f"{OUTLOOK}Type"): p for p in root.iter(f"{OUTLOOK}Protocol")}
    assert set(protocols) == {"IMAP", "POP3", "SMTP"}
    assert protocols["IMAP"].findtext(f"{OUTLOOK}Server") == "maximusconfessor.all2all.org"
    assert protocols["IMAP"].findtext(f"{OUTLOOK}LoginName") == "monsite@monsite.be"
    assert protocols["SMTP"].findtext(f"{OUTLOOK}Encryption") == "TLS"
    assert (
        client.get("/Autodiscover/Autodiscover.xml", {"email": "a@monsite.be"}).status_code == 200
    )
    assert (
        client.post("/autodiscover/autodiscover.xml", b"<x/>", content_type="text/xml").status_code
        == 400
    )
    big = b"<EMailAddress>a@monsite.be</EMailAddress>" + b" " * 20000
    assert (
        client.post("/autodiscover/autodiscover.xml", big, content_type="text/xml").status_code
        == 413
    )


def test_apple_profile_for_a_user_of_the_owner(owner_browser: Browser, info: Mailbox) -> None:
    HostingServer.objects.filter(name="maximusconfessor").update(hostname="mail.example.net")
    response = owner_browser.get("/d/monsite.be/user/monsite0001/mobileconfig")
    profile = plistlib.loads(response.content)
    account = profile["PayloadContent"][0]
    assert account["IncomingMailServerHostName"] == "mail.example.net"
    assert account["OutgoingMailServerPortNumber"] == get_config().submission.port
    assert profile["PayloadIdentifier"] == "be.monsite.courriel.monsite0001"
    assert Client().get("/me/mobileconfig").status_code == 302  # signed in only
