"""The three autoconfiguration formats, written with real XML and plist serialisers
(so that names with odd characters stay well-formed)."""

from __future__ import annotations

import plistlib
import uuid
from xml.etree import ElementTree as ET

from courriel.autoconfig.settings import ClientSettings, Endpoint

AUTODISCOVER_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
# Namespace for the stable UUIDs of profiles (so reinstalling one replaces it).
_PROFILE_NS = uuid.UUID("5b0c4a52-5f3e-4c38-9a4f-0b3f4b8b9a61")


def _text(parent: ET.Element, tag: str, text: object) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = str(text)
    return element


def _xml(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def thunderbird(settings: ClientSettings) -> bytes:
    """Thunderbird's config-v1.1.xml; the user name is the address typed in the
    client (a mailbox signs in with its login or its primary address)."""
    root = ET.Element("clientConfig", version="1.1")
    provider = ET.SubElement(root, "emailProvider", id=settings.domain)
    _text(provider, "domain", settings.domain)
    _text(provider, "displayName", settings.display_name)
    _text(provider, "displayShortName", settings.display_name.split(".")[0])
    for endpoint in settings.endpoints:
        tag = "outgoingServer" if endpoint.protocol == "smtp" else "incomingServer"
        server = ET.SubElement(provider, tag, type=endpoint.protocol)
        _text(server, "hostname", endpoint.hostname)
        _text(server, "port", endpoint.port)
        _text(server, "socketType", endpoint.security)
        _text(server, "authentication", "password-cleartext")
        _text(server, "username", "%EMAILADDRESS%")
    return _xml(root)


def _outlook_protocol(parent: ET.Element, endpoint: Endpoint, login: str) -> None:
    protocol = ET.SubElement(parent, "Protocol")
    _text(protocol, "Type", endpoint.protocol.upper())
    _text(protocol, "Server", endpoint.hostname)
    _text(protocol, "Port", endpoint.port)
    _text(protocol, "DomainRequired", "off")
    _text(protocol, "LoginName", login)
    _text(protocol, "SPA", "off")
    if endpoint.security == "SSL":
        _text(protocol, "SSL", "on")
    else:
        _text(protocol, "SSL", "off")
        _text(protocol, "Encryption", "TLS")
    _text(protocol, "AuthRequired", "on")


def autodiscover(settings: ClientSettings, email: str) -> bytes:
    """Outlook's POX autodiscover response (IMAP, POP3 and SMTP settings)."""
    root = ET.Element("Autodiscover", xmlns=AUTODISCOVER_RESPONSE)
    response = ET.SubElement(root, "Response", xmlns=OUTLOOK_RESPONSE)
    account = ET.SubElement(response, "Account")
    _text(account, "AccountType", "email")
    _text(account, "Action", "settings")
    for endpoint in settings.endpoints:
        _outlook_protocol(account, endpoint, email)
    return _xml(root)


def mobileconfig(settings: ClientSettings, *, email: str, login: str, real_name: str) -> bytes:
    """An Apple configuration profile for one mailbox (IMAP and SMTP); the password
    is asked on the device, never put in the file."""
    assert settings.imap is not None and settings.smtp is not None
    account_id = uuid.uuid5(_PROFILE_NS, f"{login}/account")
    profile_id = uuid.uuid5(_PROFILE_NS, f"{login}/profile")
    reverse_domain = ".".join(reversed(settings.domain.split(".")))
    payload = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{reverse_domain}.courriel.{login}.mail",
        "PayloadUUID": str(account_id).upper(),
        "PayloadDisplayName": email,
        "EmailAccountDescription": email,
        "EmailAccountName": real_name or email,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": email,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerHostName": settings.imap.hostname,
        "IncomingMailServerPortNumber": settings.imap.port,
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerUsername": login,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": settings.smtp.hostname,
        "OutgoingMailServerPortNumber": settings.smtp.port,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerUsername": login,
        "OutgoingPasswordSameAsIncomingPassword": True,
    }
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{reverse_domain}.courriel.{login}",
        "PayloadUUID": str(profile_id).upper(),
        "PayloadDisplayName": f"{settings.display_name} mail ({login})",
        "PayloadDescription": f"Mail settings for {email}",
        "PayloadOrganization": settings.display_name,
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [payload],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)
