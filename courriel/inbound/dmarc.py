"""DMARC (RFC 7489): is the header From domain authenticated by an aligned SPF pass
or an aligned valid DKIM signature, and what does its owner ask us to do if not.

Organisational domains come from the Public Suffix List (the `publicsuffixlist`
package ships the list; nothing is fetched at run time). Records are read through
our resolver; a look-up that cannot be answered is `temperror`, never a failure.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache, lru_cache

from publicsuffixlist import PublicSuffixList

from courriel.dns import resolver
from courriel.dns.resolver import DNSTemporaryError
from courriel.inbound.sender_policy import SpfResult
from courriel.inbound.signatures import DkimResult

POLICIES = ("none", "quarantine", "reject")


@cache
def _public_suffixes() -> PublicSuffixList:
    """The list, parsed when DMARC first needs it (some 1.3 MiB of sets): mail from our
    own users and trusted networks is never checked, so a process may never need it."""
    return PublicSuffixList()


@lru_cache(maxsize=20_000)
def organisational_domain(domain: str) -> str:
    """`mail.example.co.uk` -> `example.co.uk`; a public suffix itself stays as it is."""
    name = domain.lower().rstrip(".")
    return _public_suffixes().privatesuffix(name) or name


def aligned(identifier: str, from_domain: str, mode: str = "r") -> bool:
    if not identifier or not from_domain:
        return False
    if mode == "s":
        return identifier == from_domain
    return organisational_domain(identifier) == organisational_domain(from_domain)


@dataclass(frozen=True)
class Record:
    found_at: str  # the domain whose _dmarc record this is
    p: str
    sp: str
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100


@lru_cache(maxsize=4096)  # records are few and read for every message: parse each once
def parse_record(text: str, found_at: str) -> Record | None:
    """A DMARC record, or None if `text` is not one (RFC 7489 6.3)."""
    tags: dict[str, str] = {}
    for index, part in enumerate(text.split(";")):
        key, sep, value = part.strip().partition("=")
        key, value = key.strip().lower(), value.strip()
        if index == 0:
            if key != "v" or value != "DMARC1":
                return None
            continue
        if sep and key and key not in tags:
            tags[key] = value
    p = tags.get("p", "").lower()
    if p not in POLICIES:
        if "rua" not in tags:  # 6.6.3: an invalid p= without rua is no record at all
            return None
        p = "none"
    sp = tags.get("sp", "").lower()
    try:
        pct = max(0, min(100, int(tags.get("pct", "100"))))
    except ValueError:
        pct = 100
    return Record(
        found_at,
        p,
        sp if sp in POLICIES else p,
        "s" if tags.get("adkim", "").lower() == "s" else "r",
        "s" if tags.get("aspf", "").lower() == "s" else "r",
        pct,
    )


def find_record(from_domain: str) -> Record | None:
    """The record for `from_domain`, else its organisational domain's (6.6.3).
    Raises DNSTemporaryError when the DNS cannot answer."""
    candidates = [from_domain]
    org = organisational_domain(from_domain)
    if org != from_domain:
        candidates.append(org)
    for domain in candidates:
        records = [
            r
            for r in (parse_record(t, domain) for t in resolver.txt(f"_dmarc.{domain}"))
            if r is not None
        ]
        if len(records) == 1:
            return records[0]
        if len(records) > 1:
            return None  # several records: no policy (6.6.3)
    return None


@dataclass(frozen=True)
class DmarcResult:
    result: str  # pass, fail, none, temperror
    from_domain: str
    published: str = "none"  # p (or sp) as published, for the header; "unknown": no answer
    policy: str = "none"  # what applies to a failure after pct sampling (or "unknown")
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.result == "fail"


@dataclass(frozen=True)
class Alignment:
    passed: bool
    temporary: bool  # no aligned pass, but an answer that could have given one is missing
    via: str = ""  # "spf" or "dkim"


def alignment(
    from_domain: str, spf: SpfResult, dkims: list[DkimResult], aspf: str = "r", adkim: str = "r"
) -> Alignment:
    if spf.passed and aligned(spf.domain, from_domain, aspf):
        return Alignment(True, False, "spf")
    for signature in dkims:
        if signature.passed and aligned(signature.domain, from_domain, adkim):
            return Alignment(True, False, "dkim")
    temporary = (spf.temporary and aligned(spf.domain, from_domain, aspf)) or any(
        s.result == "temperror" and aligned(s.domain, from_domain, adkim) for s in dkims
    )
    return Alignment(False, temporary)


def evaluate(from_domain: str, spf: SpfResult, dkims: list[DkimResult]) -> DmarcResult:
    try:
        record = find_record(from_domain)
    except DNSTemporaryError as error:  # the policy itself is unknown
        return DmarcResult("temperror", from_domain, "unknown", "unknown", str(error))
    if record is None:
        return DmarcResult("none", from_domain, reason="no DMARC record")
    found = alignment(from_domain, spf, dkims, record.aspf, record.adkim)
    published = record.p if record.found_at == from_domain else record.sp
    if found.passed:
        return DmarcResult("pass", from_domain, published, "none", f"aligned {found.via} pass")
    if found.temporary:
        return DmarcResult(
            "temperror", from_domain, published, published, "SPF or DKIM could not be checked now"
        )
    if any(s.result == "neutral" and aligned(s.domain, from_domain, record.adkim) for s in dkims):
        # An aligned signature we could not check (the message was too big to hold in
        # memory): no verdict, rather than a failure that would refuse good mail.
        return DmarcResult(
            "none", from_domain, published, "none", "not evaluated: aligned DKIM not verified"
        )
    policy = published
    if record.pct < 100 and random.random() * 100 >= record.pct:  # pct= sampling
        policy = {"reject": "quarantine", "quarantine": "none"}.get(policy, policy)
    return DmarcResult(
        "fail", from_domain, published, policy, "no aligned SPF pass or valid DKIM signature"
    )
