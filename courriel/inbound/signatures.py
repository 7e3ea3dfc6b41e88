"""DKIM signatures (RFC 6376) and the ARC chain (RFC 8617) of an incoming message,
verified with dkimpy; key look-ups go through our resolver."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import dkim

from courriel.delivery.message import header_block
from courriel.dns.resolver import DNSTemporaryError
from courriel.inbound.dnslookups import dkim_txt

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

MAX_SIGNATURES = 8  # each costs a key look-up and a body hash: a limit against abuse
_quiet = logging.getLogger("courriel.inbound.dkimpy")
_quiet.setLevel(logging.CRITICAL)  # dkimpy logs every failure at ERROR; we report them
_HASHES = {"sha256": "SHA256", "sha1": "SHA1"}  # names in cryptography's `hashes`


# -- two fast paths in dkimpy ---------------------------------------------------------------
# dkimpy checks RSA signatures in pure Python (a 2048-bit modular exponentiation and
# byte conversions: some 0.7 ms per signature here) and parses the key record again for
# every signature. Incoming mail checks every signature of every message, so both
# steps are given to faster equivalents: OpenSSL (through `cryptography`, already a
# dependency) for the RSASSA-PKCS1-v1_5 check itself, and a cache of parsed key records
# (keyed by the record's text, so a changed key is parsed anew). The verdicts are the
# same; only the arithmetic moved.
# `cryptography` is imported with the first signature to check, not with this module:
# its Rust extension is some 6 MiB resident in every process that loads it, and mail
# from our own users and trusted networks (and unsigned mail) never needs it.
@lru_cache(maxsize=4096)
def _rsa_key(modulus: int, exponent: int) -> RSAPublicKey:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def _rsassa_verify(hash_object: Any, signature: bytes, public_key: dict[str, int]) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    algorithm = _HASHES.get(str(hash_object.name).lower())
    if algorithm is None:
        return False
    try:
        key = _rsa_key(public_key["modulus"], public_key["publicExponent"])
        key.verify(
            signature,
            hash_object.digest(),
            padding.PKCS1v15(),
            utils.Prehashed(getattr(hashes, algorithm)()),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


@lru_cache(maxsize=4096)
def _parsed_key(name: bytes, record: bytes) -> Any:
    return dkim.evaluate_pk(name, record)


def _load_key(name: bytes, dnsfunc: Any = dkim_txt, timeout: float = 5) -> Any:
    record = dnsfunc(name, timeout=timeout)
    if record is None:
        return dkim.evaluate_pk(name, record)  # dkimpy's own "missing public key" error
    return _parsed_key(name, record)


dkim.RSASSA_PKCS1_v1_5_verify = _rsassa_verify
dkim.load_pk_from_dns = _load_key


@dataclass(frozen=True)
class DkimResult:
    result: str  # pass, fail, temperror, permerror; neutral: not verified (too big)
    domain: str  # d=
    selector: str  # s=
    b: str  # the start of b=, to tell signatures apart (RFC 6008 header.b)
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.result == "pass"


@dataclass(frozen=True)
class ArcResult:
    result: str  # pass, fail, none, temperror
    reason: str = ""


def _tag(value: bytes | None) -> str:
    return (value or b"").decode("ascii", "replace").strip()


TOO_BIG = "message too big to verify here"


def unverified_dkim(head: bytes) -> list[DkimResult]:
    """A "neutral" result for each DKIM signature of a message whose body is not at
    hand (too big to hold in memory): its identity is known, its validity is not."""
    from courriel.delivery.message import header_values

    results = []
    for value in header_values(head, b"DKIM-Signature")[:MAX_SIGNATURES]:
        tags = {}
        for part in value.split(";"):
            key, sep, tag = part.partition("=")
            if sep:
                tags[key.strip().lower()] = "".join(tag.split())
        results.append(
            DkimResult(
                "neutral",
                tags.get("d", "").lower().rstrip("."),
                tags.get("s", ""),
                tags.get("b", "")[:8],
                TOO_BIG,
            )
        )
    return results


def _has_field(header: bytes, name: bytes) -> bool:
    """Whether a header block holds a field `name` (lower case, colon included)."""
    lowered = header.lower()
    return lowered.startswith(name) or b"\n" + name in lowered


def verify_dkim(message: bytes) -> list[DkimResult]:
    """One result per DKIM-Signature header (top first), at most MAX_SIGNATURES. An
    unsigned message skips dkimpy's parse of the whole message (~1.8 ms per 100 KiB)."""
    if not _has_field(header_block(message), b"dkim-signature:"):
        return []
    try:
        verifier = dkim.DKIM(message, logger=_quiet)
    except Exception as error:
        return [DkimResult("permerror", "", "", "", f"message cannot be parsed: {error}")]
    count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    results = []
    for index in range(min(count, MAX_SIGNATURES)):
        verifier.signature_fields = {}
        verifier.domain = verifier.selector = None
        try:
            ok = verifier.verify(idx=index, dnsfunc=dkim_txt)
            result, reason = ("pass", "") if ok else ("fail", "signature did not verify")
        except DNSTemporaryError as error:
            result, reason = "temperror", str(error)
        except dkim.DKIMException as error:
            result, reason = "permerror", str(error)
        except Exception as error:  # a malformed signature must not stop the others
            result, reason = "permerror", f"{type(error).__name__}: {error}"
        fields = verifier.signature_fields or {}
        results.append(
            DkimResult(
                result,
                _tag(fields.get(b"d")).lower().rstrip("."),
                _tag(fields.get(b"s")),
                _tag(fields.get(b"b")).replace(" ", "").replace("\t", "")[:8],
                reason,
            )
        )
    return results


def signed(message: bytes) -> bool:
    """Whether the message carries a DKIM signature or an ARC set (work to verify)."""
    block = header_block(message)
    return _has_field(block, b"dkim-signature:") or has_arc(block)


def has_arc(header: bytes) -> bool:
    return _has_field(header, b"arc-seal:")


def verify_arc(message: bytes) -> ArcResult:
    """The ARC chain's validation status (cv) as it arrived."""
    try:
        cv, _results, comment = dkim.ARC(message, logger=_quiet).verify(dnsfunc=dkim_txt)
    except DNSTemporaryError as error:
        return ArcResult("temperror", str(error))
    except Exception as error:
        return ArcResult("fail", f"{type(error).__name__}: {error}")
    if cv == dkim.CV_Pass:
        return ArcResult("pass", "")
    if cv == dkim.CV_None:
        return ArcResult("none", comment)
    return ArcResult("fail", comment)
