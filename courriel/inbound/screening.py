"""What happens to one incoming message once it is authenticated and scanned: the
one decision the SMTP and LMTP servers apply.

Message-wide answers come first (a DNS failure that matters: 451 4.4.3; our own
domain forged: 550 5.7.1). Then each recipient gets an action — deliver, junk (its
local copies into the Junk folder, its forwards withheld) or refuse — from the DMARC
policy of the header From domain (as the recipient domain's provider override
allows) and from rspamd's verdict (as the recipient mailbox's thresholds say).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from courriel.cachedonly import cached_or_thread
from courriel.dbthread import run_db
from courriel.inbound import authresults, rspamd, signatures
from courriel.inbound.checks import Report, authenticate
from courriel.inbound.rules import domain_rules, is_ours, mailbox_rules
from courriel.inbound.sender_policy import SpfResult
from courriel.inbound.settings import FilterSettings

log = logging.getLogger("courriel.inbound")

DELIVER, JUNK, REFUSE = "deliver", "junk", "refuse"
_RANK = {DELIVER: 0, JUNK: 1, REFUSE: 2}
DNS_TEMPFAIL = "451 4.4.3 Cannot verify the sender's authentication now (DNS), try again later"
SPAM_TEMPFAIL = "451 4.7.1 Spam filter unavailable, try again later"
# Above this size a signed message is checked in a worker thread, not on the event loop
# (its body hashes would stall every other session for milliseconds).
INLINE_LIMIT = 256 * 1024
_SPAM_HEADER = re.compile(rb"^x-spam(-status)?[ \t]*:", re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    """A recipient as the checks see it."""

    address: str
    domain: str  # the hosted domain it belongs to ("" when none: an SRS return)
    mailboxes: tuple[int, ...]  # mailboxes getting a local copy
    forwards: bool


@dataclass
class Screening:
    content: bytes
    actions: list[str]
    replies: dict[int, str] = field(default_factory=dict)  # per-recipient refusals
    header: bytes = b""  # Authentication-Results and X-Spam headers, on top of each copy
    reply: str | None = None  # a message-wide answer (4xx or 5xx)
    vouched: bool = False  # our own From domain, authenticated: we may sign it
    greylist: bool = False  # rspamd asked for greylisting

    def escalate(self, index: int, action: str, reply: str) -> None:
        if _RANK[action] > _RANK[self.actions[index]]:
            self.actions[index] = action
            if action == REFUSE:
                self.replies[index] = reply

    def withhold_forwards(self, targets: list[Target], reply: str) -> None:
        """Junk means "kept here in the Junk folder": a recipient with nowhere to keep
        it (forwarding only) refuses the message instead of forwarding it."""
        for index, target in enumerate(targets):
            if self.actions[index] == JUNK and not target.mailboxes:
                self.escalate(index, REFUSE, reply)

    @property
    def all_refused(self) -> bool:
        return bool(self.actions) and all(a == REFUSE for a in self.actions)


def judge_authentication(
    report: Report, targets: list[Target], settings: FilterSettings
) -> Screening:
    screening = Screening(b"", [DELIVER] * len(targets), header=report.header())
    forged = report.forged_own
    if forged is not None:
        domain, temporary = forged
        if temporary:
            screening.reply = DNS_TEMPFAIL
        else:
            screening.reply = (
                f"550 5.7.1 Message refused: the header From domain {domain} is hosted here "
                "and this message is not authenticated for it (DMARC: no aligned SPF pass "
                "or valid DKIM signature)"
            )
        return screening
    screening.vouched = bool(report.own)
    if not settings.dmarc_enforce:
        return screening
    for result in report.dmarc:
        if result.result == "temperror" and result.policy in ("quarantine", "reject", "unknown"):
            screening.reply = DNS_TEMPFAIL
            return screening
        if not result.failed or result.policy == "none":
            continue
        refusal = (
            f"550 5.7.1 Message refused: it fails the DMARC policy of {result.from_domain} "
            f"(p={result.published}: no aligned SPF pass or valid DKIM signature)"
        )
        for index, target in enumerate(targets):
            override = domain_rules(target.domain).dmarc if target.domain else "follow"
            if override == "monitor":
                continue
            if result.policy == "reject" and override == "follow":
                screening.escalate(index, REFUSE, refusal)
            else:
                screening.escalate(index, JUNK, refusal)
        screening.withhold_forwards(
            targets,
            f"550 5.7.1 Message fails the DMARC policy of {result.from_domain} "
            f"(p={result.published}) and is not forwarded",
        )
    return screening


def judge_spam(screening: Screening, scan: rspamd.Scan, targets: list[Target]) -> None:
    if scan.action == "soft reject":
        screening.reply = "451 4.7.1 " + (scan.message or "Try again later")
        return
    if scan.action == "greylist":
        screening.greylist = True
    refusal = "554 5.7.1 Message refused as spam" + (f": {scan.message}" if scan.message else "")
    for index, target in enumerate(targets):
        if not (target.domain and domain_rules(target.domain).spam):
            continue
        rules = mailbox_rules(target.mailboxes[0]) if target.mailboxes else None
        if rules is not None and rules.reject_score is not None:
            refuse = scan.score >= rules.reject_score
        else:
            refuse = scan.action == "reject"
        if rules is not None and rules.junk_score is not None:
            junk = scan.score >= rules.junk_score
        else:
            junk = scan.action in ("add header", "rewrite subject", "reject")
        if refuse:
            screening.escalate(index, REFUSE, refusal)
        elif junk:
            screening.escalate(index, JUNK, refusal)
    screening.withhold_forwards(targets, "550 5.7.1 Message classified as spam is not forwarded")


def _spam_headers(scan: rspamd.Scan | None, junk: bool, error: str) -> bytes:
    if scan is None:
        return f"X-Spam-Status: Unknown, not scanned ({error})\r\n".encode("ascii", "replace")
    lines = f"X-Spam-Status: {'Yes' if junk else 'No'}, {scan.status_line}\r\n"
    if junk:
        lines = "X-Spam: Yes\r\n" + lines
    return lines.encode("ascii", "replace")


def _wants_spam_scan(settings: FilterSettings, targets: list[Target]) -> bool:
    return bool(settings.rspamd_url) and any(
        t.domain and domain_rules(t.domain).spam for t in targets
    )


async def screen(
    content: bytes,
    *,
    settings: FilterSettings,
    authserv_id: str,
    client_ip: str,
    helo: str,
    sender: str,
    targets: list[Target],
    spf: SpfResult | None,
    queue_id: str,
    complete: bool = True,
) -> Screening:
    """Authenticate `content` from `client_ip`, then scan it; the decision for each
    of `targets`. Never raises for a check that cannot be done: a temporary answer.
    With `complete` false, `content` is only the header block of a message too big
    to hold in memory: signatures and spam are not checked (the headers say so).

    The checks run on the event loop when every DNS and routing answer they need is
    cached, else in a worker thread (`courriel.cachedonly`): the same result."""
    content = authresults.strip_ours(content, authserv_id)

    def authenticate_and_judge() -> tuple[Screening, bool]:
        report = authenticate(
            content,
            authserv_id=authserv_id,
            client_ip=client_ip,
            helo=helo,
            sender=sender,
            spf=spf,
            is_ours=is_ours,
            complete=complete,
        )
        screening = judge_authentication(report, targets, settings)
        decided = screening.reply is not None or screening.all_refused
        return screening, not decided and _wants_spam_scan(settings, targets)

    if len(content) <= INLINE_LIMIT or not signatures.signed(content):
        screening, scan_it = await cached_or_thread(authenticate_and_judge)
    else:  # hashing a big signed body would hold the event loop: a thread
        screening, scan_it = await run_db(authenticate_and_judge)
    screening.content = content
    if scan_it and not complete:
        screening.header += _spam_headers(None, False, "message too big to scan")
        return screening
    if not scan_it:
        return screening
    scan: rspamd.Scan | None = None
    error = ""
    try:
        scan = await rspamd.check(
            settings.rspamd_url,
            content,
            timeout=settings.timeout,
            client_ip=client_ip,
            helo=helo,
            sender=sender,
            recipients=[t.address for t in targets],
            queue_id=queue_id,
            hostname=authserv_id,
        )
    except rspamd.RspamdUnavailable as failure:
        log.warning("%s: spam filter unavailable: %s", queue_id, failure)
        if not settings.fail_open:
            screening.reply = SPAM_TEMPFAIL
            return screening
        error = "rspamd unreachable"
    if scan is not None:
        await cached_or_thread(judge_spam, screening, scan, targets)
    screening.content = authresults.drop_fields(content, lambda f: bool(_SPAM_HEADER.match(f[0])))
    junk = JUNK in screening.actions or REFUSE in screening.actions
    screening.header += _spam_headers(scan, junk, error)
    return screening
