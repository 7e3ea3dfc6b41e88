"""Address resolution: what happens to mail for one envelope recipient.

This is the single function the SMTP edge (RCPT decisions), the router (delivery),
the LMTP service for Postfix, the panel and `courriel resolve` ask. It follows
primary and additional addresses, domain aliases, `user+tag` sub-addresses, aliases
and their chains, catch-alls and everyone-in-domain, and stops at loops.

Its trace is a list of steps: an English template with its values and the hosted
domain the step looked into. `courriel resolve` prints them in English; the panel
translates the templates and hides the steps inside another customer's domains.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from django.utils import timezone
from django.utils.translation import gettext_noop

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


@dataclass(frozen=True)
class Step:
    """One line of the trace: `template % values`, indented by depth. `domain` is the
    hosted domain (A-label) the step looked into, "" for addresses elsewhere."""

    depth: int
    template: str
    values: dict[str, str]
    domain: str = ""

    def text(self, translate: Any = None) -> str:
        template = translate(self.template) if translate else self.template
        return "  " * self.depth + template % self.values


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
    steps: list[Step] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status == "deliver"

    @property
    def trace(self) -> list[str]:
        return [step.text() for step in self.steps]

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        del data["steps"]
        data["trace"] = self.trace
        return data


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

    def note(self, depth: int, template: str, where: str = "", **values: str) -> None:
        self.result.steps.append(Step(depth, template, values, where))

    # -- addresses -----------------------------------------------------------------------
    def address(self, email: EmailAddress, depth: int, *, top: bool = False) -> None:
        key = str(email)
        if depth > MAX_DEPTH or key in self.seen:
            self.loop = True
            looped = hosted_domain(email.domain)
            self.note(
                depth, gettext_noop("%(address)s: loop, stopped here"), _name(looped), address=key
            )
            return
        self.seen.add(key)
        domain = hosted_domain(email.domain)
        if domain is None:
            self.forward(key, depth)
            return
        if domain.name != email.domain:
            self.note(
                depth,
                gettext_noop("%(address)s: domain alias of %(domain)s"),
                domain.name,
                address=key,
                domain=domain.name,
            )
            email = EmailAddress(email.local_part, domain.name)
        entry = self.find(domain, email.local_part, depth)
        if entry is None:
            self.note(
                depth, gettext_noop("%(address)s: unknown address"), domain.name, address=str(email)
            )
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
        address = f"{local_part}@{domain.name}"
        if base != local_part and base and (tagged := entries.get(base)) and tagged.enabled:
            self.note(
                depth,
                gettext_noop("%(address)s: sub-address of %(base)s"),
                domain.name,
                address=address,
                base=base,
            )
            return tagged
        catch_all = entries.get("")
        if catch_all is not None:
            self.note(
                depth,
                gettext_noop("%(address)s: caught by the catch-all alias"),
                domain.name,
                address=address,
            )
            return catch_all
        return None

    # -- targets -------------------------------------------------------------------------
    def mailbox(self, mailbox: Mailbox, via: str, depth: int) -> None:
        key = f"mailbox:{mailbox.pk}"
        if key in self.seen:
            return
        self.seen.add(key)
        self.result.reached.append(mailbox.login)
        where = mailbox.domain.name
        if mailbox.deliver_normally:
            self.result.copies.append(LocalCopy(mailbox.pk, mailbox.login, where, via))
            self.note(
                depth,
                gettext_noop("%(address)s: mailbox %(login)s"),
                where,
                address=via,
                login=mailbox.login,
            )
        else:
            self.note(
                depth,
                gettext_noop("%(address)s: mailbox %(login)s (not kept, forwarded only)"),
                where,
                address=via,
                login=mailbox.login,
            )
        if autoreply_active(mailbox, self.today):
            self.result.autoreplies.append(mailbox.pk)
            self.note(
                depth + 1,
                gettext_noop("automatic reply from %(login)s"),
                where,
                login=mailbox.login,
            )
        for target in mailbox.forward_to:
            self.target_address(target, depth + 1)

    def alias(self, alias: Alias, via: str, depth: int, *, top: bool) -> None:
        where = alias.domain.name
        if alias.bounce:
            message = alias.bounce_message
            if message:
                self.note(
                    depth,
                    gettext_noop("%(address)s: bounced (%(message)s)"),
                    where,
                    address=via,
                    message=message,
                )
            else:
                self.note(depth, gettext_noop("%(address)s: bounced"), where, address=via)
            if top:
                self.bounced = True
                self.result.bounce_message = message
            return
        self.note(depth, gettext_noop("%(address)s: alias"), where, address=via)
        for mailbox in alias.mailboxes.select_related("domain"):
            self.mailbox(mailbox, via, depth + 1)
        if alias.everyone:
            self.note(depth + 1, gettext_noop("everyone in %(domain)s"), where, domain=where)
            for mailbox in Mailbox.objects.filter(domain=alias.domain).select_related("domain"):
                self.mailbox(mailbox, via, depth + 2)
        for target in alias.forward_to:
            self.target_address(target, depth + 1)

    def target_address(self, text: str, depth: int) -> None:
        try:
            email = parse_address(text)
        except ValidationError:
            self.note(depth, gettext_noop("%(address)s: invalid address, skipped"), address=text)
            return
        self.address(email, depth)

    def forward(self, address: str, depth: int) -> None:
        if address not in self.result.forwards:
            self.result.forwards.append(address)
        self.note(depth, gettext_noop("forward to %(address)s"), address=address)


def _name(domain: Domain | None) -> str:
    return domain.name if domain is not None else ""


def resolve(recipient: str, *, now: datetime | None = None) -> Resolution:
    """Say what happens to mail for `recipient` (an envelope address)."""
    try:
        email = parse_address(recipient)
    except ValidationError as error:
        return Resolution(
            recipient=recipient,
            status="invalid",
            steps=[Step(0, "%(error)s", {"error": str(error)})],
        )
    result = Resolution(recipient=str(email), status="unknown")
    domain = hosted_domain(email.domain)
    if domain is None:
        result.status = "not_local"
        result.steps.append(
            Step(
                0,
                gettext_noop("%(address)s: %(domain)s is not hosted here"),
                {"address": str(email), "domain": email.domain},
            )
        )
        if _claimed(email.domain):
            result.steps.append(
                Step(
                    0,
                    gettext_noop("%(domain)s is a customer's claim still pending verification"),
                    {"domain": email.domain},
                )
            )
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
