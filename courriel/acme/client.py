"""Getting and renewing certificates from an ACME CA (RFC 8555) with the maintained
`acme` package (certbot's protocol library), answering HTTP-01 challenges from our
own port-80 responder (`courriel.acme.responder`), or TLS-ALPN-01 challenges on the
web panel's TLS port (`courriel.acme.alpn`), as `[tls] acme_challenge` says.

Which names: the platform's host name, and each hosted domain's `mail.` and
`autoconfig.` names, but only those that resolve (through the platform's resolver)
to an address of the host name: asking a CA for a name that points elsewhere would
only fail, and count against the CA's rate limits. One certificate per group (the
host name alone; a domain's two names together), renewed `[tls] acme_renew_before`
ahead of its expiry.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from courriel.acme import alpn, store
from courriel.config import Config
from courriel.units import parse_duration

if TYPE_CHECKING:  # loaded only when a certificate is asked for
    import josepy
    from acme.client import ClientV2

log = logging.getLogger("courriel.acme")

ACCOUNT_KEY = "account.key"
FINALIZE_SECONDS = 90


class AcmeError(Exception):
    """Issuance failed; the message says what the CA or the network answered."""


@dataclass(frozen=True)
class Group:
    """Names on one certificate; stored under its first name."""

    names: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.names[0]


def _addresses(name: str) -> set[str]:
    from courriel.dns.resolver import query

    found: set[str] = set()
    for rdtype in ("A", "AAAA"):
        found.update(record.address for record in query(name, rdtype))
    return found


def wanted_groups(config: Config) -> list[Group]:
    """Every group of names that resolves to this server (DNS failures: skipped now,
    tried again at the next round)."""
    from courriel.accounts.models import Domain
    from courriel.dns.resolver import DNSTemporaryError

    hostname = config.hostname.lower().rstrip(".")
    try:
        ours = _addresses(hostname)
    except DNSTemporaryError as error:
        log.warning("ACME: cannot resolve %s (%s): no certificates asked for now", hostname, error)
        return []
    if not ours:
        log.warning("ACME: %s does not resolve: no certificates asked for", hostname)
        return []
    groups = [Group((hostname,))]
    for domain in Domain.objects.order_by("name").values_list("name", flat=True):
        names = []
        for name in (f"mail.{domain}", f"autoconfig.{domain}"):
            try:
                if _addresses(name) & ours:
                    names.append(name)
            except DNSTemporaryError:
                continue
        names = [n for n in names if n != hostname]
        if names:
            groups.append(Group(tuple(names)))
    return groups


def expiry(path: Path) -> datetime.datetime | None:
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    return certificate.not_valid_after_utc


def due(config: Config, group: Group, now: datetime.datetime | None = None) -> bool:
    """No certificate for the group yet, one missing a name, or one close to expiry."""
    now = now or datetime.datetime.now(datetime.UTC)
    held = {name: chain for name, chain, _key in store.issued(config)}
    chain = held.get(group.key)
    if chain is None or set(group.names) - set(store.names_of(chain)):
        return True
    ends = expiry(chain)
    ahead = parse_duration(config.tls.acme_renew_before)
    return ends is None or ends - now <= ahead


def _account_key(config: Config) -> josepy.JWKRSA:
    import josepy
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path = store.root(config) / ACCOUNT_KEY
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        store.write_private(
            path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
    return josepy.JWKRSA(key=key)


def _client(config: Config) -> tuple[ClientV2, josepy.JWKRSA]:
    from acme import client, errors, messages

    section = config.tls
    verify: bool | str = section.acme_ca_file or True
    account = _account_key(config)
    network = client.ClientNetwork(account, user_agent="courriel", verify_ssl=verify)
    try:
        directory = client.ClientV2.get_directory(section.acme_directory, network)
        acme = client.ClientV2(directory, network)
        registration = messages.NewRegistration.from_data(
            email=section.acme_email or None, terms_of_service_agreed=True
        )
        try:
            acme.new_account(registration)
        except errors.ConflictError as existing:  # the key's account exists: use it
            network.account = messages.RegistrationResource(
                uri=existing.location, body=messages.Registration()
            )
    except Exception as error:
        raise AcmeError(f"cannot reach the CA at {section.acme_directory}: {error}") from None
    return acme, account


def _offered(config: Config, authorization: Any) -> Any:
    """The challenge of `[tls] acme_challenge` among those the CA offers."""
    from acme import challenges

    kind = config.tls.acme_challenge
    wanted = challenges.HTTP01 if kind == "http-01" else alpn.challenge_class()
    found = next((c for c in authorization.body.challenges if isinstance(c.chall, wanted)), None)
    if found is None:
        raise AcmeError(
            f"the CA offers no {kind} challenge for {authorization.body.identifier.value}"
        )
    return found


def _prepare(
    config: Config, account: josepy.JWKRSA, challenge: Any, name: str
) -> Callable[[], None]:
    """Make `challenge` answerable (where the CA will look: port 80's responder or the
    panel's port); returns what undoes it."""
    if config.tls.acme_challenge == "http-01":
        token = challenge.chall.encode("token")
        store.save_challenge(config, token, challenge.chall.validation(account))
        return lambda: store.drop_challenge(config, token)
    alpn.begin(config, name, challenge.chall.key_authorization(account))
    return lambda: alpn.end(config, name)


def _explain(error: Exception) -> str:
    """The CA's own reason for a failed validation, one line per name."""
    from acme import errors

    if not isinstance(error, errors.ValidationError):
        return str(error)
    lines = [
        f"{authorization.body.identifier.value}: {challenge.chall.typ} validation failed: "
        f"{challenge.error.detail or challenge.error.typ}"
        for authorization in error.failed_authzrs
        for challenge in authorization.body.challenges
        if challenge.error is not None
    ]
    return "; ".join(lines) or str(error)


def issue(config: Config, group: Group) -> Path:
    """A new certificate for `group`, saved; returns the chain's path."""
    from acme import crypto_util, messages
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if config.tls.acme_challenge == "tls-alpn-01":
        alpn.challenge_class()  # before the CA's offers are decoded
    acme, account = _client(config)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    undo: list[Callable[[], None]] = []
    try:
        order = acme.new_order(crypto_util.make_csr(key_pem, list(group.names)))
        for authorization in order.authorizations:
            if authorization.body.status == messages.STATUS_VALID:
                continue  # proven recently: the CA reuses it (Let's Encrypt: 30 days)
            challenge = _offered(config, authorization)
            name = authorization.body.identifier.value
            undo.append(_prepare(config, account, challenge, name))
            acme.answer_challenge(challenge, challenge.chall.response(account))
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=FINALIZE_SECONDS)
        order = acme.poll_and_finalize(order, deadline=deadline)
    except AcmeError:
        raise
    except Exception as error:
        raise AcmeError(_explain(error)) from None
    finally:
        for step in undo:
            step()
    store.save(config, group.key, order.fullchain_pem.encode(), key_pem)
    log.warning("ACME: certificate for %s issued", ", ".join(group.names))
    return store.directory(config, group.key) / "fullchain.pem"
