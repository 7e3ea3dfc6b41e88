"""TLS-ALPN-01 (RFC 8737): proving a name to the ACME CA on the web panel's TLS port,
for a machine whose port 80 is someone else's.

The CA connects to the name's port 443 with SNI = the name and ALPN `acme-tls/1`,
expects a self-signed certificate for that name alone carrying the critical
acmeIdentifier extension (the SHA-256 of the key authorization), and closes after
the handshake. Python's ssl module has no ALPN-select callback, so the choice is made
by SNI: while a challenge for exactly that name is pending (a file written by the
round asking the CA, which may be another process: `courriel tls renew`), the panel's
SNI callback switches the connection to a `ChallengeContext` whose only protocol is
`acme-tls/1` and whose certificate is the challenge's. Every connection that ends up
on such a context is closed after its handshake (`courriel.web.server`): the CA wants
nothing more, and a browser that asked for that name meanwhile must not reach the
panel behind the challenge's certificate. Outside those seconds, and for every other
name, the panel's certificates serve as usual.
"""

from __future__ import annotations

import ssl
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from courriel.acme import store
from courriel.config import Config

if TYPE_CHECKING:
    from acme.challenges import KeyAuthorizationChallenge

TYPE = "tls-alpn-01"
ALPN_PROTOCOL = "acme-tls/1"
ACME_IDENTIFIER_OID = "1.3.6.1.5.5.7.1.31"
# A challenge file older than this is a round that died before cleaning up: ignored,
# so that the name's ordinary clients are not closed for ever. A round answers
# within FINALIZE_SECONDS (90 s) or fails.
PENDING_FOR = 300.0


class ChallengeContext(ssl.SSLContext):
    """A context that answers one TLS-ALPN-01 challenge and nothing else."""


def challenge_class() -> type[KeyAuthorizationChallenge]:
    """The `acme` package's class for "tls-alpn-01" challenges, registered with its
    challenge machinery when the package has none (acme 5 dropped `TLSALPN01`): without
    it the CA's offer decodes as an unrecognised challenge."""
    from acme import challenges

    known = challenges.Challenge.TYPES.get(TYPE)
    if known is not None:
        return known

    @challenges.ChallengeResponse.register
    class TLSALPN01Response(challenges.KeyAuthorizationChallengeResponse):
        typ = TYPE

    @challenges.Challenge.register
    class TLSALPN01(challenges.KeyAuthorizationChallenge):
        response_cls = TLSALPN01Response
        typ = TYPE

        def validation(self, account_key: Any, **unused: Any) -> str:
            return self.key_authorization(account_key)

    return TLSALPN01


def certificate(name: str, key_authorization: str) -> bytes:
    """The challenge's key and self-signed certificate (PEM): `name` as its only DNS
    name, and the critical acmeIdentifier extension whose value is the DER OCTET
    STRING of SHA-256(key authorization) (RFC 8737 section 3)."""
    import datetime
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from courriel.tls import self_signed

    key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    identifier = x509.UnrecognizedExtension(
        x509.ObjectIdentifier(ACME_IDENTIFIER_OID), b"\x04\x20" + digest
    )
    cert = self_signed(
        key, name, [x509.DNSName(name)], datetime.timedelta(days=1), [(identifier, True)]
    )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ) + cert.public_bytes(serialization.Encoding.PEM)


def begin(config: Config, name: str, key_authorization: str) -> None:
    """The challenge for `name` is pending: the panel answers it from now on."""
    path = store.alpn_challenge_path(config, name)
    if path is None:
        raise ValueError(f"not a host name: {name!r}")
    store.write_private(path, certificate(name, key_authorization))


def end(config: Config, name: str) -> None:
    """The challenge is over (validated or not): the name's own certificate again."""
    path = store.alpn_challenge_path(config, name)
    if path is not None:
        path.unlink(missing_ok=True)


_contexts: dict[Path, tuple[int, ChallengeContext]] = {}


def pending_context(config: Config, name: str) -> ChallengeContext | None:
    """The context answering a pending challenge for `name` (an SNI name), or None.
    Called for every handshake on the panel's port: one stat when nothing is pending."""
    path = store.alpn_challenge_path(config, name)
    if path is None:
        return None
    try:
        found = path.stat()
    except OSError:
        _contexts.pop(path, None)
        return None
    if not stat.S_ISREG(found.st_mode) or time.time() - found.st_mtime > PENDING_FOR:
        return None
    cached = _contexts.get(path)
    if cached is not None and cached[0] == found.st_mtime_ns:
        return cached[1]
    context = ChallengeContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8737: TLS 1.2 or higher
    context.set_alpn_protocols([ALPN_PROTOCOL])
    try:
        context.load_cert_chain(str(path))
    except (OSError, ssl.SSLError):
        return None  # replaced or removed meanwhile: the next handshake sees the new file
    _contexts[path] = (found.st_mtime_ns, context)
    return context


def is_challenge(context: ssl.SSLContext) -> bool:
    return isinstance(context, ChallengeContext)
