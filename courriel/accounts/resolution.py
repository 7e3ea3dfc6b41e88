"""Address resolution: what happens to mail for one envelope recipient.

This is the single function the SMTP edge (RCPT decisions), the router (delivery),
the LMTP service for Postfix, the panel and `courriel resolve` ask. It follows
primary and additional addresses, domain aliases, `user+tag` sub-addresses, aliases
and their chains, catch-alls and everyone-in-domain, and stops at loops.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Literal

from django.utils import timezone

from courriel.accounts.addresses import EmailAddress, parse_address
from courriel.accounts.models import Address, Alias, Domain, DomainAlias, Mailbox
from courriel.errors import ValidationError

Status = Literal["deliver", "unknown", "bounce", "not_local", "loop", "invalid"]
MAX_DEPTH = 20


@dataclass
class LocalCopy:
    mailbox_id: int
    login: str
    domain: str
    address: str  # the address through which the mailbox was reached (Delivered-To)


@dataclass
class Resolution:
    recipient: str
    status: Status
    copies: list[LocalCopy] = field(default_factory=list)
    forwards: list[str] = field(default_factory=list)
    autoreplies: list[int] = field(default_factory=list)  # mailbox ids, active now
    reached: list[str] = field(default_factory=list)  # logins of every mailbox reached
    bounce_message: str = ""
    domain: str = ""  # the hosted domain (A-label) that owns the recipient
    trace: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status == "deliver"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def autoreply_active(mailbox: Mailbox, today: date) -> bool:
    if not mailbox.autoreply_enabled or not mailbox.autoreply_message.strip():
        return False
    if mailbox.autoreply_start and today < mailbox.autoreply_start:
        return False
    return not (mailbox.autoreply_end and today > mailbox.autoreply_end)


def hosted_domain(name: str) -> Domain | None:
    """The hosted domain that receives mail for `name` (directly or as a domain alias).
    A name still pending proof of control is not hosted: it takes no mail and mail
    for it goes wherever the real domain's MX says."""
    domain = Domain.objects.filter(name=name, verified_at__isnull=False).first()
    if domain is not None:
        return domain
    alias = (
        DomainAlias.objects.select_related("domain")
        .filter(name=name, verified_at__isnull=False, domain__verified_at__isnull=False)
        .first()
    )
    return alias.domain if alias else None


def _claimed(name: str) -> bool:
    return (
        Domain.objects.filter(name=name).exists() or DomainAlias.objects.filter(name=name).exists()
    )


class _Walker:
    def __init__(self, result: Resolution, today: date) -> None:
        self.result = result
        self.today = today
        self.seen: set[str] = set()
        self.loop = False
        self.bounced = False

    def note(self, depth: int, text: str) -> None:
        self.result.trace.append("  " * depth + text)

    # -- addresses -----------------------------------------------------------------------
    def address(self, email: EmailAddress, depth: int, *, top: bool = False) -> None:
        key = str(email)
        if depth > MAX_DEPTH or key in self.seen:
            self.loop = True
            self.note(depth, f"{key}: loop, stopped here")
            return
        self.seen.add(key)
        domain = hosted_domain(email.domain)
        if domain is None:
            self.forward(key, depth)
            return
        if domain.name != email.domain:
            self.note(depth, f"{key}: domain alias of {domain.name}")
            email = EmailAddress(email.local_part, domain.name)
        entry = self.find(domain, email.local_part, depth)
        if entry is None:
            self.note(depth, f"{email}: unknown address")
            return
        if entry.mailbox_id:
            assert entry.mailbox is not None
            self.mailbox(entry.mailbox, str(email), depth)
        else:
            assert entry.alias is not None
            self.alias(entry.alias, str(email), depth, top=top)

    def find(self, domain: Domain, local_part: str, depth: int) -> Address | None:
        entries = {
            a.local_part: a
            for a in Address.objects.select_related("mailbox__domain", "alias").filter(
                domain=domain,
                local_part__in={local_part, local_part.partition("+")[0], ""},
            )
        }
        entry = entries.get(local_part)
        if entry is not None and entry.enabled:
            return entry
        base = local_part.partition("+")[0]
        if base != local_part and base and (tagged := entries.get(base)) and tagged.enabled:
            self.note(depth, f"{local_part}@{domain.name}: sub-address of {base}")
            return tagged
        catch_all = entries.get("")
        if catch_all is not None:
            self.note(depth, f"{local_part}@{domain.name}: caught by the catch-all alias")
            return catch_all
        return None

    # -- targets -------------------------------------------------------------------------
    def mailbox(self, mailbox: Mailbox, via: str, depth: int) -> None:
        key = f"mailbox:{mailbox.pk}"
        if key in self.seen:
            return
        self.seen.add(key)
        self.result.reached.append(mailbox.login)
        if mailbox.deliver_normally:
            self.result.copies.append(
                LocalCopy(mailbox.pk, mailbox.login, mailbox.domain.name, via)
            )
            self.note(depth, f"{via}: mailbox {mailbox.login}")
        else:
            self.note(depth, f"{via}: mailbox {mailbox.login} (not kept, forwarded only)")
        if autoreply_active(mailbox, self.today):
            self.result.autoreplies.append(mailbox.pk)
            self.note(depth + 1, f"automatic reply from {mailbox.login}")
        for target in mailbox.forward_to:
            self.target_address(target, depth + 1)

    def alias(self, alias: Alias, via: str, depth: int, *, top: bool) -> None:
        if alias.bounce:
            message = alias.bounce_message
            self.note(depth, f"{via}: bounced" + (f" ({message})" if message else ""))
            if top:
                self.bounced = True
                self.result.bounce_message = message
            return
        self.note(depth, f"{via}: alias")
        for mailbox in alias.mailboxes.select_related("domain"):
            self.mailbox(mailbox, via, depth + 1)
        if alias.everyone:
            self.note(depth + 1, f"everyone in {alias.domain.name}")
            for mailbox in Mailbox.objects.filter(domain=alias.domain).select_related("domain"):
                self.mailbox(mailbox, via, depth + 2)
        for target in alias.forward_to:
            self.target_address(target, depth + 1)

    def target_address(self, text: str, depth: int) -> None:
        try:
            email = parse_address(text)
        except ValidationError:
            self.note(depth, f"{text}: invalid address, skipped")
            return
        self.address(email, depth)

    def forward(self, address: str, depth: int) -> None:
        if address not in self.result.forwards:
            self.result.forwards.append(address)
        self.note(depth, f"forward to {address}")


def resolve(recipient: str, *, now: datetime | None = None) -> Resolution:
    """Say what happens to mail for `recipient` (an envelope address)."""
    try:
        email = parse_address(recipient)
    except ValidationError as error:
        return Resolution(recipient=recipient, status="invalid", trace=[str(error)])
    result = Resolution(recipient=str(email), status="unknown")
    domain = hosted_domain(email.domain)
    if domain is None:
        result.status = "not_local"
        result.trace.append(f"{email}: {email.domain} is not hosted here")
        if _claimed(email.domain):
            result.trace.append(f"{email.domain} is a customer's claim still pending verification")
        return result
    result.domain = domain.name
    today = timezone.localdate(now) if now else timezone.localdate()
    walker = _Walker(result, today)
    walker.address(email, 0, top=True)
    if result.copies or result.forwards:
        result.status = "deliver"
    elif walker.bounced:
        result.status = "bounce"
    elif walker.loop:
        result.status = "loop"
    return result
