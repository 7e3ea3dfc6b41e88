"""Finding addresses: "who gets mail for info@monsite.be?" and the searches of Mail
Users and Mail Aliases.

The answer to "who gets mail for X" is the one address resolution
(`courriel.accounts.resolution`), with its trace. A domain owner may ask only about
addresses of their own domains (and their domain aliases); where the trace follows a
forward into another customer's domain, those steps and copies are replaced by one
line saying so, exactly as the owner's panel hides that customer everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_noop

from courriel.accounts.addresses import parse_address
from courriel.accounts.models import Address, Domain, DomainAlias, Mailbox
from courriel.accounts.permissions import Actor, require_domain_manager, visible_domains
from courriel.accounts.resolution import LocalCopy, Resolution, Step, resolve
from courriel.errors import ValidationError

OTHER_CUSTOMER = gettext_noop("%(address)s: handled by another customer's domain on this platform")


@dataclass
class Lookup:
    """What happens to mail for one address, as this actor may see it."""

    address: str
    status: str
    copies: list[LocalCopy] = field(default_factory=list)
    forwards: list[str] = field(default_factory=list)
    autoreply: bool = False
    bounce_message: str = ""
    steps: list[Step] = field(default_factory=list)
    hidden_copies: int = 0  # copies delivered in another customer's domain


def _address_in(domain: Domain, text: str) -> str | None:
    """`info` or `info@monsite.be` as a full address; None when it is not one."""
    text = text.strip()
    if not text or any(c.isspace() for c in text):
        return None
    try:
        return str(parse_address(text if "@" in text else f"{text}@{domain.name}"))
    except ValidationError:
        return None


def _own_names(actor: Actor) -> set[str] | None:
    """The hosted domain names the actor may see into (None: every one)."""
    if actor.is_provider:
        return None
    return set(visible_domains(actor).values_list("name", flat=True))


def who_receives(actor: Actor, domain: Domain, text: str) -> Lookup | None:
    """Resolve `text` (a local part of `domain`, or a full address of one of the
    actor's domains); None when it is not such an address."""
    require_domain_manager(actor, domain)
    address = _address_in(domain, text)
    if address is None:
        return None
    own = _own_names(actor)
    if own is not None:
        domain_part = address.rpartition("@")[2]
        alias_of = DomainAlias.objects.filter(name=domain_part).values_list(
            "domain__name", flat=True
        )
        if domain_part not in own and not (set(alias_of) & own):
            return None
    return _visible(resolve(address), own)


def _visible(result: Resolution, own: set[str] | None) -> Lookup:
    def hidden(where: str) -> bool:
        return own is not None and bool(where) and where not in own

    steps: list[Step] = []
    hiding_below: int | None = None
    for step in result.steps:
        if hiding_below is not None and step.depth > hiding_below:
            continue
        hiding_below = None
        if hidden(step.domain):
            address = step.values.get("address", "")
            steps.append(Step(step.depth, OTHER_CUSTOMER, {"address": address}))
            hiding_below = step.depth
            continue
        steps.append(step)
    copies = [c for c in result.copies if not hidden(c.domain)]
    return Lookup(
        address=result.recipient,
        status=result.status,
        copies=copies,
        forwards=list(result.forwards),
        autoreply=bool(result.autoreplies),
        bounce_message=result.bounce_message,
        steps=steps,
        hidden_copies=len(result.copies) - len(copies),
    )


def _split(term: str) -> tuple[Q, str]:
    """A search as (condition on the local part, the domain typed after "@" or "").

    `info` finds every local part containing it; `info@monsite.be` (or `info@mon`,
    while typing) that very local part in the domains whose name starts so."""
    local, at, domain_part = term.strip().lower().partition("@")
    if not at:
        return Q(local_part__icontains=local), ""
    return (Q(local_part=local) if local else Q()), domain_part


def _domains_named(start: str) -> QuerySet[Domain]:
    return Domain.objects.filter(
        Q(name__startswith=start) | Q(domain_aliases__name__startswith=start)
    ).values("pk")


def search_mailboxes(mailboxes: QuerySet[Mailbox], term: str) -> QuerySet[Mailbox]:
    """Mail Users' search: login, real name, or any of the mailbox's addresses."""
    term = term.strip()
    if not term:
        return mailboxes
    local, domain_part = _split(term)
    addresses = Address.objects.filter(local, mailbox__isnull=False)
    if domain_part:
        addresses = addresses.filter(domain__in=_domains_named(domain_part))
    text = Q(login__icontains=term) | Q(real_name__icontains=term)
    return mailboxes.filter(text | Q(pk__in=addresses.values("mailbox")))


def alias_rows(actor: Actor, domain: Domain, term: str = "") -> QuerySet[Address]:
    """Mail Aliases' list: every address of the domain that is not a mailbox's primary
    one, that is its aliases and the mailboxes' additional addresses ("info →
    monsite0001"), in order, narrowed by the search."""
    require_domain_manager(actor, domain)
    rows = (
        Address.objects.filter(domain=domain, kind__in=(Address.ALIAS, Address.ADDITIONAL))
        .select_related("mailbox", "alias__domain")
        .prefetch_related("alias__mailboxes", "alias__addresses")
        .order_by("local_part")
    )
    term = term.strip()
    if term:
        local, domain_part = _split(term)
        rows = rows.filter(local)
        if domain_part:
            rows = rows.filter(domain__in=_domains_named(domain_part))
    return rows
