"""DKIM keys of hosted domains: generated with the domain, published in DNS by the
owner (`courriel domain dns`), used by the outbound queue to sign mail.

`cryptography` is imported when a key is made or read, not with this module: its
7 MB would otherwise sit in every process that reads mail (IMAP, POP3, SMTP workers).
"""

from __future__ import annotations

import base64

from courriel.accounts.models import Domain


def generate_private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_key_base64(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def ensure_key(domain: Domain) -> str:
    """The domain's private key, made now if it has none (domains created before keys)."""
    if not domain.dkim_private_key:
        domain.dkim_private_key = generate_private_key()
        Domain.objects.filter(pk=domain.pk).update(dkim_private_key=domain.dkim_private_key)
    return domain.dkim_private_key
