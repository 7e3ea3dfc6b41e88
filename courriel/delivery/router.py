"""Routing of an accepted message: local copies into Maildirs (through the delivery
journal), forwards and relayed mail into the outbound queue, automatic replies.

`accept` is called (in a worker thread) after DATA, once the recipients have been
resolved at RCPT time. It returns only when every queued copy and the journal record
of the local copies are durable on disk; if any write fails, what this message
already queued is removed again and the caller answers with a temporary error, so
the sender's retry cannot produce duplicates. Follow-ups (automatic replies, "last
new mail") come after and never put the message itself at risk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import SynchronousOnlyOperation
from django.db import DatabaseError

from courriel import cachedonly
from courriel.accounts.models import Mailbox
from courriel.accounts.resolution import LocalCopy, Resolution, hosted_domain
from courriel.accounts.routing_cache import cached_mailboxes
from courriel.cluster.handoff import Remote, hand_over
from courriel.cluster.placement import held_elsewhere
from courriel.config import get_config
from courriel.delivery import lastmail
from courriel.delivery.body import Body
from courriel.delivery.dkim import arc_seal, sign
from courriel.delivery.journal import Copy, Record, get_journal
from courriel.delivery.message import check_loop, received_header, trace_headers
from courriel.delivery.quota import (
    domain_used_is_known,
    has_room,
    maildir_of,
    may_warn,
    note_domain_growth,
    too_big_ever,
)
from courriel.delivery.replies import Outcome, TemporaryFailure
from courriel.delivery.space import enough_space
from courriel.delivery.srs import from_config as srs_from_config
from courriel.mailstore.maildir import Delivery, MaildirError, deliver_many, unique_name
from courriel.outbound.spool import Entry, Recipient, get_spool, new_id
from courriel.stats import counters

JUNK = "Junk"

log = logging.getLogger("courriel.mail")


@dataclass
class Incoming:
    """An accepted message and what was decided about each recipient at RCPT time."""

    sender: str
    recipients: list[str]
    resolutions: list[Resolution | None]  # None: relayed (signed-in user) or SRS return
    content: bytes | Body  # a big message stays in its spool file (courriel.delivery.body)
    srs_returns: dict[int, str] = field(default_factory=dict)  # index -> original address
    client_ip: str = "127.0.0.1"
    helo: str = ""
    tls: str | None = None
    authenticated: str | None = None
    protocol: str = "ESMTP"
    queue_id: str = field(default_factory=new_id)
    defer_full_mailboxes: bool = True  # SMTP: queue a copy for a full mailbox; LMTP: 452
    # What the incoming checks decided (courriel.inbound): the Authentication-Results
    # and X-Spam headers for every copy, recipients whose copies go into Junk (their
    # forwards and automatic replies withheld), recipients refused, and whether we
    # vouch for the message (only then does our DKIM signature go on its forwards).
    auth_header: bytes = b""
    junk: set[int] = field(default_factory=set)
    refused: dict[int, Outcome] = field(default_factory=dict)
    vouched: bool = False

    @property
    def head(self) -> bytes:
        """What the header rules read (the header block; the whole message if small)."""
        return self.content.head if isinstance(self.content, Body) else self.content

    def whole(self) -> bytes:
        """The whole message in memory: for forwards (signing needs it), rare when big."""
        return self.content.read() if isinstance(self.content, Body) else self.content

    def received_header(self, recipient: str | None) -> bytes:
        return received_header(
            helo=self.helo,
            client_ip=self.client_ip,
            hostname=get_config().hostname,
            protocol=self.protocol,
            queue_id=self.queue_id,
            recipient=recipient,
            tls=self.tls,
        )


@dataclass
class _Plan:
    local: dict[int, tuple[LocalCopy, int]] = field(default_factory=dict)
    junk: set[int] = field(default_factory=set)  # mailbox ids whose copy goes into Junk
    forwards: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    relay: list[str] = field(default_factory=list)
    returns: list[str] = field(default_factory=list)
    autoreplies: dict[int, str] = field(default_factory=dict)
    keep_forwarding: set[int] = field(default_factory=set)  # recipients with a forward


def _outcome_for(resolution: Resolution) -> Outcome | None:
    if resolution.status == "deliver":
        return None
    if resolution.status == "bounce":
        return Outcome(550, "5.1.1", resolution.bounce_message or "Mailbox unavailable")
    if resolution.status == "loop":
        return Outcome(554, "5.4.6", "Alias loop, mail cannot be delivered")
    if resolution.status == "not_local":
        return Outcome(554, "5.7.1", "Relay access denied")
    return Outcome(550, "5.1.1", "No such user here")


def _plan(incoming: Incoming, outcomes: list[Outcome | None]) -> _Plan:
    plan = _Plan()
    seen_forwards: set[str] = set()
    for index, rcpt in enumerate(incoming.recipients):
        if index in incoming.srs_returns:
            plan.returns.append(incoming.srs_returns[index])
            continue
        if index in incoming.refused:
            outcomes[index] = incoming.refused[index]
            continue
        resolution = incoming.resolutions[index]
        if resolution is None:
            plan.relay.append(rcpt)
            continue
        refusal = _outcome_for(resolution)
        if refusal is not None:
            outcomes[index] = refusal
            continue
        for copy in resolution.copies:
            if copy.mailbox_id not in plan.local and index in incoming.junk:
                plan.junk.add(copy.mailbox_id)
            plan.local.setdefault(copy.mailbox_id, (copy, index))
        if index in incoming.junk:
            continue  # kept in Junk: no forward, no automatic reply
        if resolution.forwards:
            plan.keep_forwarding.add(index)
        for target in resolution.forwards:
            if target not in seen_forwards:
                seen_forwards.add(target)
                plan.forwards.setdefault((resolution.domain, rcpt), []).append(target)
        for mailbox_id in resolution.autoreplies:
            reached = next(
                (c.address for c in resolution.copies if c.mailbox_id == mailbox_id), rcpt
            )
            plan.autoreplies.setdefault(mailbox_id, _without_tag(reached))
    return plan


def _without_tag(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local.partition('+')[0]}@{domain}"


class NotForTheLoop(Exception):
    """`accept(on_loop=True)` found the message needs more than the event loop may do
    (a database or cache look-up, a forward, a full mailbox...). Nothing was done:
    run `accept` again in a thread."""


# Room kept for the trace headers when a copy's size is judged before they exist.
_TRACE_ROOM = 4096


def _plan_on_loop(
    incoming: Incoming, outcomes: list[Outcome | None]
) -> tuple[_Plan, dict[int, Mailbox]] | None:
    """The plan, if the message is plain local delivery whose every answer is in
    memory: copies into mailboxes of this server with room, nothing else to do (no
    forward, automatic reply, relay, bounce return, spool file). None otherwise.
    Run in cached-only mode: a routing-cache miss raises instead of querying."""
    if isinstance(incoming.content, Body):
        return None
    plan = _plan(incoming, outcomes)
    if plan.forwards or plan.autoreplies or plan.relay or plan.returns:
        return None
    size = len(incoming.content) + _TRACE_ROOM
    mailboxes = cached_mailboxes(list(plan.local))
    for mailbox in mailboxes.values():
        if held_elsewhere(mailbox) or not domain_used_is_known(mailbox.domain):
            return None
        if not has_room(mailbox, size, cached=True):
            return None
    return plan, mailboxes


def accept(incoming: Incoming, *, on_loop: bool = False) -> list[Outcome]:
    """Store the message for every recipient; one outcome per recipient.

    Raises TemporaryFailure (nothing stored) when it cannot be made durable now.

    `on_loop`: called on the event loop itself, which must neither wait for the
    database nor hold up other sessions long. Only plain local delivery with every
    answer in memory is done there (`_plan_on_loop`); for anything else this raises
    NotForTheLoop before anything is stored or sent.
    """
    config = get_config()
    outcomes: list[Outcome | None] = [None] * len(incoming.recipients)
    loop = check_loop(incoming.head, incoming.recipients, config.smtp.max_received_headers)
    if loop is not None:
        return [loop] * len(incoming.recipients)
    if on_loop:
        try:
            done, planned = cachedonly.attempt(_plan_on_loop, incoming, outcomes)
        except SynchronousOnlyOperation:  # a row not loaded with the cached ones
            raise NotForTheLoop from None
        if not done or planned is None:
            raise NotForTheLoop
        plan, mailboxes = planned
    else:
        try:
            plan = _plan(incoming, outcomes)
            mailboxes = cached_mailboxes(list(plan.local) + list(plan.autoreplies))
        except DatabaseError as error:
            log.error("%s: database unavailable while routing: %s", incoming.queue_id, error)
            raise TemporaryFailure(
                Outcome(451, "4.3.0", "Temporary local problem (database), try again later")
            ) from None
    if not enough_space(len(incoming.content)):
        log.error("%s: refused for now: disk space below [mail] min_free_space", incoming.queue_id)
        raise TemporaryFailure(
            Outcome(452, "4.3.1", "Insufficient system storage, try again later")
        )
    queued: list[Entry] = []
    delivered: list[Mailbox] = []
    remote: list[Remote] = []
    try:
        copies = _local_copies(
            incoming, plan, mailboxes, outcomes, queued, delivered, remote, cached_quota=on_loop
        )
        _queue_outbound(incoming, plan, queued)
        if copies:
            warn = may_warn(mailboxes.get(c.mailbox_id) for c in copies)
            store_copies(Record(incoming.queue_id, copies, incoming.content, warn))
        for item in remote:
            queued.extend(hand_over(incoming.queue_id, incoming.sender, item))
    except (MaildirError, OSError) as error:
        _rollback(queued)
        log.error("%s: cannot store message: %s", incoming.queue_id, error)
        if getattr(error, "errno", None) in (28, 122):  # ENOSPC, EDQUOT
            raise TemporaryFailure(
                Outcome(452, "4.3.1", "Insufficient system storage, try again later")
            ) from None
        raise TemporaryFailure(
            Outcome(451, "4.3.0", "Temporary local problem, try again later")
        ) from None
    except Exception:
        _rollback(queued)
        raise
    _follow_up(incoming, plan, mailboxes, delivered)
    final: list[Outcome] = []
    accepted = Outcome(250, "2.0.0", f"OK: queued as {incoming.queue_id}")
    for outcome in outcomes:
        final.append(outcome if outcome is not None else accepted)
    return final


def store_copies(record: Record) -> None:
    """Through the journal (one flush, group-committed, for every copy), or for a big
    message straight into the Maildirs, each copy flushed: its bytes are in a spool
    file, not in memory, and are copied by the kernel."""
    journal = get_journal()
    if not isinstance(record.content, Body):
        journal.commit(record)
        return
    deliver_many(
        [
            Delivery(Path(c.maildir), [c.prefix, record.content], folder=c.folder, name=c.name)
            for c in record.copies
        ]
    )
    journal.follow_up(Record(record.id, record.copies, b""))


def _local_copies(
    incoming: Incoming,
    plan: _Plan,
    mailboxes: dict[int, Mailbox],
    outcomes: list[Outcome | None],
    queued: list[Entry],
    delivered: list[Mailbox],
    remote: list[Remote],
    *,
    cached_quota: bool = False,
) -> list[Copy]:
    """Decide every local copy (name, headers, room); they are written by the journal.
    Copies for mailboxes another hosting server holds go into `remote`. `cached_quota`:
    on the event loop, the domain's usage is taken from memory (see `domain_used`)."""
    copies: list[Copy] = []
    for mailbox_id, (copy, index) in plan.local.items():
        mailbox = mailboxes.get(mailbox_id)
        if mailbox is None:  # deleted since RCPT
            continue
        received = incoming.received_header(copy.address)
        prefix = trace_headers(incoming.sender, copy.address, incoming.auth_header + received)
        data = [prefix, incoming.content]
        total = sum(len(part) for part in data)
        if held_elsewhere(mailbox):  # another hosting server holds it: handed over below
            folder = JUNK if mailbox_id in plan.junk else ""
            remote.append(Remote(mailbox, copy.address, data, folder))
            continue
        if not has_room(mailbox, total, cached=cached_quota):
            if index in plan.keep_forwarding:
                log.warning(
                    "%s: mailbox %s is full: local copy skipped, forward still sent",
                    incoming.queue_id,
                    mailbox.login,
                )
            elif too_big_ever(mailbox, total):
                outcomes[index] = Outcome(552, "5.2.2", "Message too big for the mailbox quota")
            elif incoming.defer_full_mailboxes:
                queued.append(
                    get_spool().enqueue(
                        incoming.sender,
                        [
                            Recipient(
                                copy.address,
                                mailbox_id=mailbox.pk,
                                delivered_to=copy.address,
                                original=copy.address,
                            )
                        ],
                        data,
                        kind="local",
                        note=f"{incoming.queue_id}: mailbox {mailbox.login} full",
                    )
                )
                log.info(
                    "%s: mailbox %s full, copy queued for retry", incoming.queue_id, mailbox.login
                )
            else:
                outcomes[index] = Outcome(452, "4.2.2", "Mailbox full, try again later")
            continue
        folder = JUNK if mailbox_id in plan.junk else ""
        copies.append(
            Copy(str(maildir_of(mailbox)), unique_name(total), data[0], mailbox.pk, folder)
        )
        delivered.append(mailbox)
        note_domain_growth(mailbox.domain, total)
        log.info(
            "%s: from=<%s> to=<%s> mailbox=%s size=%d status=delivered%s",
            incoming.queue_id,
            incoming.sender,
            copy.address,
            mailbox.login,
            total,
            " folder=Junk" if folder else "",
        )
    return copies


def _sender_domain_hosted(sender: str) -> bool:
    return bool(sender) and hosted_domain(sender.rpartition("@")[2].lower()) is not None


def _queue_outbound(incoming: Incoming, plan: _Plan, queued: list[Entry]) -> None:
    config = get_config()
    spool = get_spool()
    if plan.forwards:
        srs = srs_from_config()
        hosted_sender = _sender_domain_hosted(incoming.sender)
        for (forwarder, via), targets in plan.forwards.items():
            received = incoming.received_header(via)
            trace = trace_headers(
                incoming.sender, via, incoming.auth_header + received, final=False
            )
            sender = incoming.sender
            if config.srs.enabled and sender and not hosted_sender:
                sender = srs.forward(sender, forwarder)
            queued.append(
                spool.enqueue(
                    sender,
                    [Recipient(t, original=via) for t in targets],
                    forwarded_copy(trace + incoming.whole(), forwarder, incoming),
                    kind="forward",
                    note=f"{incoming.queue_id}: forwarded for {via}",
                )
            )
    if plan.relay or plan.returns:
        message = incoming.received_header(None) + incoming.whole()
    if plan.relay:
        domain = incoming.sender.rpartition("@")[2].lower()
        signer = _our_from_domain(incoming.head) or (
            domain if _sender_domain_hosted(incoming.sender) else None
        )
        queued.append(
            spool.enqueue(
                incoming.sender,
                plan.relay,
                sign(message, signer) if signer else message,
                kind="relay",
                note=f"{incoming.queue_id}: submitted by {incoming.authenticated}",
            )
        )
    if plan.returns:
        queued.append(
            spool.enqueue(
                incoming.sender,
                plan.returns,
                message,
                kind="forward",
                note=f"{incoming.queue_id}: SRS return",
            )
        )


def forwarded_copy(message: bytes, forwarder: str, incoming: Incoming) -> bytes:
    """A forwarded copy keeps the sender's own DKIM signatures. When we checked it (our
    Authentication-Results is on it) it gets our ARC seal, for the forwarding domain,
    so the next receiver can trust our results. Our DKIM signature is added only for
    a header From of ours, and only when we vouch for the message (authenticated, or
    from a signed-in user): a forward must never lend our domain to a forgery."""
    if incoming.auth_header:
        message = arc_seal(message, forwarder, get_config().hostname)
    own = _our_from_domain(incoming.head)
    if own and incoming.vouched:
        message = sign(message, own)
    return message


def _our_from_domain(content: bytes) -> str | None:
    """The header From domain when it is one we host (with a DKIM key), else None."""
    from courriel.inbound.checks import from_domains

    domains = from_domains(content)
    if len(domains) == 1 and hosted_domain(domains[0]) is not None:
        return domains[0]
    return None


def _rollback(queued: list[Entry]) -> None:
    spool = get_spool()
    for entry in queued:
        spool.remove(entry.id)


def _follow_up(
    incoming: Incoming, plan: _Plan, mailboxes: dict[int, Mailbox], delivered: list[Mailbox]
) -> None:
    """After the message is safe: last-mail times, IDLE notifications, warnings and
    automatic replies. A failure here is logged; the message is already delivered."""
    from courriel.delivery.autoreply import send_autoreplies

    lastmail.note(m.pk for m in delivered)
    counters.routed([m.domain.name for m in delivered], plan.forwards)
    try:
        send_autoreplies(incoming, plan.autoreplies, mailboxes)
    except Exception:
        log.exception("%s: follow-up after delivery failed", incoming.queue_id)
