"""DKIM signatures (RFC 6376) and the ARC chain (RFC 8617) of an incoming message,
verified with dkimpy; key look-ups go through our resolver."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dkim

from courriel.dns.resolver import DNSTemporaryError
from courriel.inbound.dnslookups import dkim_txt

MAX_SIGNATURES = 8  # each costs a key look-up and a body hash: a limit against abuse
_quiet = logging.getLogger("courriel.inbound.dkimpy")
_quiet.setLevel(logging.CRITICAL)  # dkimpy logs every failure at ERROR; we report them


@dataclass(frozen=True)
class DkimResult:
    result: str  # pass, fail, temperror, permerror
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


def verify_dkim(message: bytes) -> list[DkimResult]:
    """One result per DKIM-Signature header (top first), at most MAX_SIGNATURES."""
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


def has_arc(header_block: bytes) -> bool:
    return b"\narc-seal:" in header_block.lower() or header_block[:9].lower() == b"arc-seal:"


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
