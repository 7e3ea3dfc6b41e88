"""The world of the incoming-mail tests: our platform (monsite.be, info@ forwarding to
monsite@gmail.com) and the other domains of the Internet, all in a private nsd:

- example.org: SPF allows 127.0.0.2 and 127.0.0.3, DKIM key s1, DMARC p=reject;
- quarantine.example: SPF allows 127.0.0.4, DMARC p=quarantine;
- evil.example: the attacker's own domain, SPF allows 127.0.0.5 (their mail passes SPF);
- monsite.be: our own records (DKIM key of the platform), SPF allows 127.0.0.7.

Clients connect from these loopback addresses (`source_address`), which are outside
`[smtp] trusted_networks` here, so every check runs. Greylisting is off (its own tests
turn it on).
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

import dkim
import dns.message
import dns.query
import dns.rdatatype
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fixtures.nsd import PrivateNSD
from tests.fixtures.platform import (
    STRONG,
    Platform,
    platform_env,
    setup_monsite,
)
from tests.fixtures.processes import fresh_database, make_courriel, start_serve
from tests.fixtures.sink import Sink

AUTHSERV_ID = "mx.courriel.test"
EXAMPLE_IP = "127.0.0.2"
EXAMPLE_OTHER_IP = "127.0.0.3"
QUARANTINE_IP = "127.0.0.4"
ATTACKER_IP = "127.0.0.5"
MONSITE_IP = "127.0.0.7"
STRANGER_IP = "127.0.0.9"  # authorised by nobody


@dataclass
class World:
    platform: Platform
    dns: PrivateNSD
    example_key: bytes  # PEM of example.org's DKIM key (selector s1)
    env: dict[str, str] = field(default_factory=dict)

    def smtp(self, source: str) -> smtplib.SMTP:
        return smtplib.SMTP(
            "127.0.0.1", self.platform.port("smtp"), timeout=30, source_address=(source, 0)
        )

    def send(
        self, source: str, sender: str, recipient: str, content: bytes, helo: str = ""
    ) -> None:
        """One message over port 25 from the loopback address `source`."""
        with self.smtp(source) as client:
            client.ehlo(helo or "mail." + sender.rpartition("@")[2])
            client.sendmail(sender, [recipient], content)

    def txt(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        """A TXT record as dkimpy wants it, asked of the test's own DNS server."""
        text = name.decode() if isinstance(name, bytes) else name
        query = dns.message.make_query(text, "TXT")
        answer = dns.query.tcp(query, "127.0.0.1", port=self.dns.port, timeout=timeout)
        for rrset in answer.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                return b"".join(next(iter(rrset)).strings)
        return None


def letter(
    sender: str,
    recipient: str,
    subject: str,
    body: str = "Bonjour, voici les nouvelles du club de tennis pour ce mois.",
    headers: dict[str, str] | None = None,
) -> bytes:
    lines = [
        f"From: {sender}",
        f"To: {recipient}",
        f"Subject: {subject}",
        f"Date: {formatdate()}",
        f"Message-ID: <{time.time_ns()}@mail.example.org>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\nA bientot\r\n").encode()


def signed(message: bytes, key: bytes, domain: str = "example.org") -> bytes:
    signature = dkim.sign(
        message,
        b"s1",
        domain.encode(),
        key,
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    return signature + message


def new_key() -> tuple[bytes, str]:
    """(PEM private key, base64 DER public key) for a DKIM record."""
    import base64

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, base64.b64encode(public).decode()


def write_zones(dns_server: PrivateNSD, courriel_json: list[dict], example_public: str) -> None:
    txt = PrivateNSD.txt
    dns_server.zone(
        "example.org",
        [
            txt("@", f"v=spf1 ip4:{EXAMPLE_IP} ip4:{EXAMPLE_OTHER_IP} -all"),
            txt("s1._domainkey", f"v=DKIM1; k=rsa; p={example_public}"),
            txt("_dmarc", "v=DMARC1; p=reject; rua=mailto:dmarc@example.org"),
            f"mail A {EXAMPLE_IP}",
        ],
    )
    dns_server.zone(
        "quarantine.example",
        [txt("@", f"v=spf1 ip4:{QUARANTINE_IP} -all"), txt("_dmarc", "v=DMARC1; p=quarantine")],
    )
    dns_server.zone("evil.example", [txt("@", f"v=spf1 ip4:{ATTACKER_IP} -all")])
    ours = [txt("@", f"v=spf1 ip4:{MONSITE_IP} -all")]
    for record in courriel_json:
        if record["type"] == "TXT" and "_domainkey" in record["name"]:
            ours.append(txt(record["name"].removesuffix(".monsite.be"), record["value"]))
        if record["type"] == "TXT" and record["name"].startswith("_dmarc"):
            ours.append(txt("_dmarc", record["value"]))
    dns_server.zone("monsite.be", ours)


@contextmanager
def inbound_world(base: Path, env: dict[str, str] | None = None) -> Iterator[World]:
    """The platform and the DNS above; `env` adds settings (rspamd, greylisting...)."""
    dns_server = PrivateNSD(base / "nsd")
    sink = Sink().start()
    pem, public = new_key()
    settings = {
        "COURRIEL_DNS_NAMESERVERS": dns_server.nameserver,
        "COURRIEL_DNS_TIMEOUT": "2s",
        "COURRIEL_SMTP_TRUSTED_NETWORKS": "192.0.2.0/24",  # documentation network: nobody
        "COURRIEL_GREYLIST_ENABLED": "false",
        "COURRIEL_LMTP_ENABLED": "true",
        "COURRIEL_LMTP_XFORWARD_HOSTS": "127.0.0.1/32",  # the Postfix edge, nobody else
        **(env or {}),
    }
    try:
        with fresh_database() as url:
            courriel = make_courriel(base, url)
            courriel.env.update(platform_env(sink))
            courriel.env.update(settings)
            setup_monsite(courriel)
            courriel("user", "create", "monsite.be", "--pass", STRONG, "--extra", "info")
            courriel("user", "forward", "monsite.be", "monsite0001", "--to", "monsite@gmail.com")
            courriel("user", "create", "monsite.be", "--pass", STRONG, "--extra", "compta")
            records = courriel("domain", "dns", "monsite.be", "--json").json
            write_zones(dns_server, records, public)
            dns_server.start()
            settings["COURRIEL_DNS_NAMESERVERS"] = dns_server.nameserver  # its port may move
            courriel.env.update(settings)
            served = start_serve(courriel)
            platform = Platform(courriel, served, sink)
            try:
                yield World(platform, dns_server, pem, settings)
            finally:
                platform.served.stop()
    finally:
        dns_server.stop()
        sink.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with inbound_world(tmp_path_factory.mktemp("inbound")) as found:
        yield found
