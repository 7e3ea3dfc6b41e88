"""SPF (RFC 7208) of the envelope sender and of the HELO name, with pyspf (the SPF
library of Debian's policyd-spf), its look-ups going through our resolver."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import spf

from courriel.dns import resolver
from courriel.inbound import dnslookups  # noqa: F401  (routes pyspf's DNS to our resolver)

RESULTS = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")


@dataclass(frozen=True)
class SpfResult:
    result: str  # one of RESULTS
    identity: str  # "mailfrom" or "helo"
    domain: str  # the domain whose policy was asked ("" when there was nothing to ask)
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.result == "pass"

    @property
    def temporary(self) -> bool:
        return self.result == "temperror"


def _is_domain(name: str) -> bool:
    if not name or "." not in name or name.startswith("["):
        return False
    if ":" not in name and not name.replace(".", "").isdigit():
        return True  # an address is dotted digits (IPv4) or has colons (IPv6)
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return True
    return False


# Verdicts already reached, by (client address, sender, HELO, identity): a client sending again
# for the same sender (a new connection per message is the rule) is not evaluated
# again while every DNS answer the verdict rested on is still the cached one. Not
# kept: temperror (the next try may get an answer) and fail (its explanation, from
# the domain's exp= record, may hold the time: RFC 7208 7.3 %{t}).
_verdicts: dict[tuple[str, str, str, str], tuple[SpfResult, resolver.Used]] = {}
_VERDICTS_MAX = 10_000
_NOT_KEPT = ("temperror", "fail")


def _run(ip: str, sender: str, helo: str, identity: str, domain: str) -> SpfResult:
    key = (ip, sender, helo, identity)
    known = _verdicts.get(key)
    if known is not None and resolver.still_cached(known[1]):
        return known[0]
    found, used = resolver.recording(lambda: _evaluate(ip, sender, helo, identity, domain))
    if found.result not in _NOT_KEPT and all(entry is not None for _, entry in used):
        if len(_verdicts) >= _VERDICTS_MAX:
            _verdicts.clear()
        _verdicts[key] = (found, used)
    return found


def _evaluate(ip: str, sender: str, helo: str, identity: str, domain: str) -> SpfResult:
    try:
        result, _code, explanation = spf.query(i=ip, s=sender, h=helo).check()
    except Exception as error:  # a library bug must not lose mail: report it, decide later
        return SpfResult("temperror", identity, domain, f"SPF evaluation failed: {error}")
    return SpfResult(result if result in RESULTS else "permerror", identity, domain, explanation)


def check_mailfrom(ip: str, sender: str, helo: str) -> SpfResult:
    """The envelope sender's SPF; for the null sender, `postmaster@<helo>` (RFC 7208 2.4)."""
    if sender:
        domain = sender.rpartition("@")[2].lower().rstrip(".")
        if not _is_domain(domain):
            return SpfResult("none", "mailfrom", domain, "no domain in the envelope sender")
        return _run(ip, sender, helo, "mailfrom", domain)
    return check_helo(ip, helo)


def check_helo(ip: str, helo: str) -> SpfResult:
    name = helo.lower().rstrip(".")
    if not _is_domain(name):
        return SpfResult("none", "helo", name, "HELO is not a domain name")
    return _run(ip, f"postmaster@{name}", name, "helo", name)
