"""TLS for every port: the configured certificate, or a self-signed one made at
initialisation so that no service ever runs in clear text only."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path
from typing import Any

from courriel.config import Config
from courriel.errors import ConfigError


def self_signed(
    key: Any,
    hostname: str,
    alt_names: list[Any],
    lifetime: datetime.timedelta,
    extensions: list[tuple[Any, bool]],
) -> Any:
    """A certificate for `hostname` (and `alt_names`) signed by its own `key`, valid
    from five minutes ago (clocks differ) for `lifetime`, with `extensions`
    ((extension, critical) pairs): the fallback certificate, and TLS-ALPN-01's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64])])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256())


def generate_self_signed(cert_path: Path, key_path: Path, hostname: str) -> None:
    # Imported here: `cryptography` (7 MB resident) is needed only on the first start.
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    alt_names: list[x509.GeneralName] = [x509.DNSName(hostname), x509.DNSName("localhost")]
    alt_names += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = self_signed(
        key,
        hostname,
        alt_names,
        datetime.timedelta(days=825),
        [(x509.BasicConstraints(ca=False, path_length=None), True)],
    )
    cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_certificate(config: Config) -> bool:
    """Create the self-signed certificate when none is configured; True if created."""
    if not config.tls_generated:
        for path in (config.tls_cert, config.tls_key):
            if not path.exists():
                raise ConfigError(f"[tls] file {path} does not exist.")
        return False
    if config.tls_cert.exists() and config.tls_key.exists():
        return False
    generate_self_signed(config.tls_cert, config.tls_key, config.hostname)
    return True


def _load(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"Cannot load the TLS certificate {cert} / key {key}: {error}") from None


def _new_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class Certificates:
    """The TLS identity of every listener of this process (web panel, SMTP,
    submission, IMAP(S), POP3(S)): one context, which `reload` fills again in place,
    so that new connections get a renewed certificate while open ones go on.

    Names with a certificate of their own (ACME: the platform's host name and each
    domain's mail./autoconfig. names) are served by SNI; a client that sends no name,
    or an unknown one, gets the `[tls]` certificate (or the self-signed fallback).

    The web panel has a context of its own, `panel_context`, with the same
    certificates: with `[tls] acme_challenge = "tls-alpn-01"` it also answers the CA's
    pending challenges (`courriel.acme.alpn`); the mail ports never do.
    """

    def __init__(self, config: Config) -> None:
        self.context = _new_context()
        self.panel_context = _new_context()
        self.by_name: dict[str, ssl.SSLContext] = {}
        self.challenges: Config | None = None
        self.context.sni_callback = self._pick
        self.panel_context.sni_callback = self._pick_for_panel
        self.reload(config)

    def reload(self, config: Config) -> None:
        # Tried on a scratch context first: a failed load can leave a context with a
        # certificate and a key that do not match, and every handshake would fail.
        _load(_new_context(), config.tls_cert, config.tls_key)
        _load(self.context, config.tls_cert, config.tls_key)
        _load(self.panel_context, config.tls_cert, config.tls_key)
        alpn = bool(config.tls.acme_directory) and config.tls.acme_challenge == "tls-alpn-01"
        self.challenges = config if alpn else None
        by_name: dict[str, ssl.SSLContext] = {}
        for name, cert, key in issued_certificates(config):
            context = _new_context()
            try:
                _load(context, cert, key)
            except ConfigError:
                continue  # a damaged issued certificate: the fallback serves the name
            by_name[name] = context
        self.by_name = by_name

    def _pick(self, connection: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object) -> None:
        chosen = self.by_name.get((name or "").lower().rstrip("."))
        if chosen is not None:
            connection.context = chosen

    def _pick_for_panel(
        self, connection: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object
    ) -> None:
        if self.challenges is not None and name:
            from courriel.acme.alpn import pending_context

            challenge = pending_context(self.challenges, name.lower().rstrip("."))
            if challenge is not None:
                connection.context = challenge
                return
        self._pick(connection, name, _)


def issued_certificates(config: Config) -> list[tuple[str, Path, Path]]:
    """(name, certificate chain, key) for every name ACME gave us a certificate for."""
    from courriel.acme.store import by_name

    return by_name(config)


_certificates: dict[tuple[Path, Path], Certificates] = {}


def _certificates_of(config: Config) -> Certificates:
    key = (config.tls_cert, config.tls_key)
    if key not in _certificates:
        _certificates[key] = Certificates(config)
    return _certificates[key]


def server_context(config: Config) -> ssl.SSLContext:
    """The server context of this certificate and key, one per process for all the
    mail listeners (see `Certificates`)."""
    return _certificates_of(config).context


def panel_context(config: Config) -> ssl.SSLContext:
    """The web panel's: the same certificates, and the CA's TLS-ALPN-01 challenges."""
    return _certificates_of(config).panel_context


def reload_certificates(config: Config) -> None:
    """Read the certificate files again (SIGHUP, or after a renewal)."""
    for certificates in _certificates.values():
        certificates.reload(config)
