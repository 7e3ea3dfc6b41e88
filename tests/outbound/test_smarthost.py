"""Sending everything through a smarthost: STARTTLS with the certificate checked
against the provider's CA, and AUTH; a wrong password keeps mail queued."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fixtures.net import free_port
from tests.fixtures.platform import private_platform
from tests.fixtures.sink import SinkHandler
from tests.fixtures.waiting import wait_until


def make_ca_and_server(directory: Path) -> tuple[Path, ssl.SSLContext]:
    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    now = datetime.datetime.now(datetime.UTC)
    ca_key, server_key = key(), key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test smarthost CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smarthost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "server.pem", directory / "server.key")
    return ca_file, context


def test_smarthost_with_starttls_and_auth(tmp_path: Path) -> None:
    ca_file, server_context = make_ca_and_server(tmp_path)
    handler = SinkHandler()

    def authenticator(server, session, envelope, mechanism, data: LoginPassword) -> AuthResult:
        ok = data.login == b"relayuser" and data.password == b"relay-secret"
        return AuthResult(success=ok, handled=False)

    port = free_port()
    smarthost = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    smarthost.start()
    env = {
        "COURRIEL_QUEUE_TRANSPORT": "",  # nothing routed around the smarthost
        "COURRIEL_QUEUE_RELAYHOST": f"127.0.0.1:{port}",
        "COURRIEL_QUEUE_RELAY_SECURITY": "starttls",
        "COURRIEL_QUEUE_RELAY_USER": "relayuser",
        "COURRIEL_QUEUE_RELAY_PASSWORD": "wrong-secret",
        "COURRIEL_QUEUE_RELAY_CA_FILE": str(ca_file),
    }
    try:
        with private_platform(tmp_path, env=env) as platform:
            with platform.submission("monsite0001") as client:
                client.sendmail(
                    "info@monsite.be",
                    ["friend@gmail.com"],
                    b"From: info@monsite.be\r\nSubject: via smarthost\r\n\r\nhi\r\n",
                )
            stuck = wait_until(
                lambda: [
                    entry
                    for entry in platform.courriel("queue", "list", "--json").json
                    if entry["recipients"][0]["address"] == "friend@gmail.com"
                    and "authentication" in entry["recipients"][0]["last_error"]
                ],
                "a failed authentication at the smarthost in the queue",
            )
            assert "535 5.7.8" in stuck[0]["recipients"][0]["last_error"]
            assert handler.messages == []
            # The operator fixes the password, restarts, and asks for a retry at once
            # rather than waiting for the back-off.
            platform.courriel.env["COURRIEL_QUEUE_RELAY_PASSWORD"] = "relay-secret"
            platform.restart()
            platform.courriel("queue", "retry")

            def delivered(recipient: str) -> list:
                with handler.lock:
                    return [m for m in handler.messages if m.recipients == [recipient]]

            [sent] = wait_until(lambda: delivered("friend@gmail.com"), "the mail at the smarthost")
            assert b"via smarthost" in sent.content
            # The set-up mail to the customer went the same way: there is no other.
            wait_until(lambda: delivered("contact@gmail.com"), "the set-up mail at the smarthost")
            assert platform.courriel("queue", "list", "--json").json == []
    finally:
        smarthost.stop()
