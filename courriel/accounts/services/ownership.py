"""Who controls a domain name, so that no customer can capture mail for a name that is
not theirs (issue 11: gmail.com as a sub-server, outlook.com as a domain alias).

A name added as a virtual server or a domain alias is verified at once when
- the provider adds it (the provider can create any name), or
- it is a subdomain of a name the same customer already controls (shop.monsite.be);
otherwise it is *pending*: it takes no mail and changes no routing
(`courriel.accounts.resolution.hosted_domain` ignores it) until a DNS TXT record
`_courriel-verify.<name>` with the name's token proves control (`verify`), or the
provider approves it (`approve`). A name under another customer's domain is refused
outright, and a public suffix (`be`, `co.uk`, `github.io`) is never a domain.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from courriel.accounts.addresses import normalize_domain, to_unicode
from courriel.accounts.models import Domain, DomainAlias, OwnedName
from courriel.accounts.permissions import Actor, require_provider, visible_domains
from courriel.audit.log import record
from courriel.errors import (
    ConflictError,
    NotFoundError,
    ServiceUnavailableError,
    ValidationError,
)
from courriel.i18n import gettext as _

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

VERIFY_LABEL = "_courriel-verify"


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    """The Public Suffix List shipped with the `publicsuffixlist` package (read once;
    nothing is fetched from the network)."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def check_not_public_suffix(name: str) -> None:
    """`co.uk` or `github.io` is where others register names, never one customer's."""
    if _suffixes().is_public(name):
        raise ValidationError(
            _(
                "%(name)s is a public suffix (like be or co.uk): only a name registered "
                "under it, such as monsite.%(name)s, can be a mail domain."
            )
            % {"name": to_unicode(name)},
            field="name",
        )


@dataclass(frozen=True)
class Claim:
    """How a new name is verified: one of OwnedName's reasons, or "" (pending)."""

    verified_by: str

    def fields(self) -> dict[str, Any]:
        """The model fields of a name made with this claim."""
        if self.verified_by:
            return {"verified_at": timezone.now(), "verified_by": self.verified_by}
        return {"verification_token": secrets.token_urlsafe(24)}


def _not_available(name: str) -> ConflictError:
    """The one answer a customer gets for a name someone else has (or claims): it
    never says who, nor whether the name is verified."""
    return ConflictError(
        _("%(name)s is not available: choose another name.") % {"name": to_unicode(name)},
        field="name",
    )


def _family_of(found: Domain | DomainAlias) -> int:
    domain = found.domain if isinstance(found, DomainAlias) else found
    return domain.parent_id or domain.pk


def _existing(name: str) -> Domain | DomainAlias | None:
    return (
        Domain.objects.filter(name=name).first()
        or DomainAlias.objects.select_related("domain").filter(name=name).first()
    )


def _check_free(actor: Actor, name: str, top: Domain | None) -> None:
    found = _existing(name)
    if found is None:
        return
    shown = to_unicode(name)
    if not actor.is_provider and (top is None or _family_of(found) != top.pk):
        raise _not_available(name)
    if actor.is_provider and found.pending:
        owner = found.domain if isinstance(found, DomainAlias) else found
        raise ConflictError(
            _(
                "%(name)s is pending verification for %(domain)s: approve it there, or "
                "delete that claim first."
            )
            % {"name": shown, "domain": owner.top.display_name},
            field="name",
        )
    if isinstance(found, Domain):
        raise ConflictError(
            _("The virtual server %(name)s already exists.") % {"name": shown}, field="name"
        )
    raise ConflictError(
        _("%(name)s is already a domain alias of another virtual server.") % {"name": shown},
        field="name",
    )


def _parents(name: str) -> list[str]:
    """shop.eu.monsite.be -> [eu.monsite.be, monsite.be], nearest first, stopping
    above the public suffix (nobody can own `be`)."""
    registrable = _suffixes().privatesuffix(name) or name
    labels = name.split(".")
    found = []
    for start in range(1, len(labels)):
        parent = ".".join(labels[start:])
        if len(parent) < len(registrable):
            break
        found.append(parent)
    return found


def _closest_verified_parent(name: str) -> Domain | DomainAlias | None:
    parents = _parents(name)
    if not parents:
        return None
    found: dict[str, Domain | DomainAlias] = {
        d.name: d for d in Domain.objects.filter(name__in=parents, verified_at__isnull=False)
    }
    for alias in DomainAlias.objects.select_related("domain").filter(
        name__in=parents, verified_at__isnull=False
    ):
        found.setdefault(alias.name, alias)
    for parent in parents:
        if parent in found:
            return found[parent]
    return None


def claim(actor: Actor, name: str, top: Domain | None) -> Claim:
    """Check that `name` (an A-label) may be added for the customer whose top-level
    domain is `top` (None for a new customer domain), and say how it is verified."""
    check_not_public_suffix(name)
    _check_free(actor, name, top)
    if actor.is_provider:
        return Claim(OwnedName.PROVIDER)
    parent = _closest_verified_parent(name)
    if parent is None:
        return Claim("")
    if top is not None and _family_of(parent) == top.pk:
        return Claim(OwnedName.SUBDOMAIN)
    raise _not_available(name)


def verification_record(found: OwnedName) -> tuple[str, str]:
    """The TXT record (name, value) that proves control of a pending name."""
    return f"{VERIFY_LABEL}.{found.name}", found.verification_token  # type: ignore[attr-defined]


def find(actor: Actor, name: str) -> Domain | DomainAlias:
    """A virtual server or domain alias the actor manages, by name."""
    try:
        ascii_name = normalize_domain(name)
    except ValidationError:
        ascii_name = ""
    domains = visible_domains(actor)
    found: Domain | DomainAlias | None = domains.filter(name=ascii_name).first()
    if found is None:
        found = (
            DomainAlias.objects.select_related("domain")
            .filter(name=ascii_name, domain__in=domains)
            .first()
        )
    if found is None:
        raise NotFoundError(
            _("No virtual server or domain alias named %(name)s.") % {"name": repr(name)}
        )
    return found


def _set_verified(found: Domain | DomainAlias, how: str) -> None:
    found.verified_at, found.verified_by, found.verification_token = timezone.now(), how, ""
    found.save(update_fields=["verified_at", "verified_by", "verification_token"])


@transaction.atomic
def _mark_verified(actor: Actor, found: Domain | DomainAlias, how: str) -> Domain | DomainAlias:
    _set_verified(found, how)
    # The same customer's pending names under this one are theirs now too.
    family = _family_of(found)
    suffix = "." + found.name
    below: list[Domain | DomainAlias] = [
        *Domain.objects.filter(verified_at__isnull=True, name__endswith=suffix),
        *DomainAlias.objects.select_related("domain").filter(
            verified_at__isnull=True, name__endswith=suffix
        ),
    ]
    for name in below:
        if _family_of(name) == family:
            _set_verified(name, OwnedName.SUBDOMAIN)
    owner = found.domain if isinstance(found, DomainAlias) else found
    action = "domain.approve" if how == OwnedName.PROVIDER else "domain.verify"
    record(actor, action, found.name, domain=owner.name, how=how)
    return found


def pending_aliases(actor: Actor, most: int = 200) -> list[DomainAlias]:
    """Domain aliases waiting for proof or approval, for the provider's list."""
    require_provider(actor, _("list every pending domain alias"))
    return list(
        DomainAlias.objects.filter(verified_at__isnull=True)
        .select_related("domain")
        .order_by("created_at")[:most]
    )


def verify(actor: Actor, name: str) -> Domain | DomainAlias:
    """Look for the name's `_courriel-verify` TXT record (through the platform's
    resolver) and mark the name verified when it holds the token."""
    from courriel.dns.resolver import DNSTemporaryError, txt

    found = find(actor, name)
    if not found.pending:
        return found
    record_name, value = verification_record(found)
    try:
        published = txt(record_name)
    except DNSTemporaryError:
        raise ServiceUnavailableError(
            _("The DNS did not answer for %(record)s; try again in a few minutes.")
            % {"record": record_name}
        ) from None
    if value not in (text.strip() for text in published):
        raise ValidationError(
            _(
                "No TXT record %(record)s with the value %(value)s was found. Publish it "
                "where the domain's DNS is hosted, then check again (a DNS change can take "
                "a few minutes to be seen)."
            )
            % {"record": record_name, "value": value},
            field="name",
        )
    return _mark_verified(actor, found, OwnedName.DNS)


def approve(actor: Actor, name: str) -> Domain | DomainAlias:
    """The provider vouches for a pending name (e.g. after checking the customer's
    papers): it takes mail at once."""
    require_provider(actor, _("approve a domain name"))
    found = find(actor, name)
    if not found.pending:
        return found
    return _mark_verified(actor, found, OwnedName.PROVIDER)
