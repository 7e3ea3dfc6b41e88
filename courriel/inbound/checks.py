"""The authentication of one incoming message: SPF (envelope sender and HELO), every
DKIM signature, the ARC chain and DMARC for each header From domain, and whether a
From domain is one of ours without proof that we sent it. Run once per message: on
the event loop when every DNS answer it needs is cached, else in a worker thread (the
libraries are blocking; `courriel.cachedonly` tells the two apart)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import getaddresses

import idna

from courriel.delivery.message import header_block, header_values
from courriel.inbound import authresults, dmarc
from courriel.inbound.sender_policy import SpfResult, check_helo, check_mailfrom
from courriel.inbound.signatures import (
    TOO_BIG,
    ArcResult,
    DkimResult,
    has_arc,
    unverified_dkim,
    verify_arc,
    verify_dkim,
)


@dataclass
class Report:
    authserv_id: str
    spf: SpfResult
    helo: SpfResult
    dkim: list[DkimResult]
    arc: ArcResult
    dmarc: list[dmarc.DmarcResult]
    # Our own domains found in the header From, with their alignment.
    own: list[tuple[str, dmarc.Alignment]] = field(default_factory=list)

    def results(self) -> list[str]:
        r = authresults.result
        spf = self.spf
        found = []
        if spf.identity == "mailfrom":
            found.append(r("spf", spf.result, spf.reason, smtp_mailfrom=spf.domain))
        if self.helo.domain:
            found.append(r("spf", self.helo.result, self.helo.reason, smtp_helo=self.helo.domain))
        if not self.dkim:
            found.append(r("dkim", "none", "no signature"))
        for signature in self.dkim:
            found.append(
                r(
                    "dkim",
                    signature.result,
                    signature.reason,
                    header_d=signature.domain,
                    header_s=signature.selector,
                    header_b=signature.b,
                )
            )
        for result in self.dmarc:
            comment = f"p={result.published} dis={result.policy.upper()}"
            if result.reason:
                comment += f"; {result.reason}"
            found.append(r("dmarc", result.result, comment, header_from=result.from_domain))
        found.append(r("arc", self.arc.result, self.arc.reason))
        return found

    def header(self) -> bytes:
        return authresults.header(self.authserv_id, self.results())

    @property
    def forged_own(self) -> tuple[str, bool] | None:
        """(domain, temporary) for the first of our From domains without an aligned pass."""
        for domain, found in self.own:
            if not found.passed:
                return domain, found.temporary
        return None


# The usual From of machine and client mail, `Name <local@domain>`, `<local@domain>` or
# `local@domain` with plain ASCII words only: its domain is read without the email
# package's address parser (a third of the checks' CPU), which gives the same answer
# for these forms (tests/inbound/test_parts.py compares the two); anything else —
# quotes, comments, groups, several addresses, encoded words — goes to the parser.
_PLAIN_FROM = re.compile(
    r"(?:[A-Za-z0-9 _-]*<(?P<angled>{0})>|(?P<bare>{0}))".format(
        r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
    )
)


def from_domains(content: bytes) -> list[str]:
    """The domains of the header From addresses (A-labels, lower case, in order)."""
    values = header_values(content, b"From")
    if len(values) == 1:
        plain = plain_from_domain(values[0])
        if plain is not None:
            return [plain]
    return parsed_from_domains(values)


def plain_from_domain(value: str) -> str | None:
    plain = _PLAIN_FROM.fullmatch(value)
    if plain is None:
        return None
    return (plain.group("angled") or plain.group("bare")).rpartition("@")[2].lower()


def parsed_from_domains(values: list[str]) -> list[str]:
    domains: list[str] = []
    for _name, address in getaddresses(values):
        domain = address.rpartition("@")[2].strip().rstrip(".").lower()
        if not domain or "@" not in address:
            continue
        if not domain.isascii():
            try:
                domain = idna.encode(domain, uts46=True).decode("ascii")
            except (idna.IDNAError, UnicodeError):
                continue
        if domain not in domains:
            domains.append(domain)
    return domains


def authenticate(
    content: bytes,
    *,
    authserv_id: str,
    client_ip: str,
    helo: str,
    sender: str,
    spf: SpfResult | None = None,
    is_ours: object = None,
    complete: bool = True,
) -> Report:
    """Check `content` as received from `client_ip`; `spf` when it was already checked
    at MAIL FROM; `is_ours(domain) -> bool` tells our own (hosted) domains. With
    `complete` false, `content` is the header block of a message too big to hold in
    memory: signatures are named, not verified (DMARC then rests on SPF)."""
    mailfrom = spf or check_mailfrom(client_ip, sender, helo)
    helo_result = mailfrom if mailfrom.identity == "helo" else check_helo(client_ip, helo)
    if complete:
        signatures = verify_dkim(content)
        arc = verify_arc(content) if has_arc(header_block(content)) else ArcResult("none")
    else:
        signatures = unverified_dkim(content)
        arc = ArcResult("none", TOO_BIG)
    domains = from_domains(content)
    results = [dmarc.evaluate(domain, mailfrom, signatures) for domain in domains]
    own = [
        (domain, dmarc.alignment(domain, mailfrom, signatures))
        for domain in domains
        if callable(is_ours) and is_ours(domain)
    ]
    return Report(authserv_id, mailfrom, helo_result, signatures, arc, results, own)
