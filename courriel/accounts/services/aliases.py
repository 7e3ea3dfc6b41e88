"""Mail aliases (chapter 10): a name, or every unknown name of the domain ("All
mailboxes", the catch-all), delivered to mailboxes, forwarded to other addresses,
sent to everyone in the domain, or bounced."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from courriel.accounts.addresses import to_unicode, validate_hosted_local_part
from courriel.accounts.models import Address, Alias, Domain, Mailbox
from courriel.accounts.permissions import Actor, require_domain_manager
from courriel.accounts.services import caps, limits
from courriel.accounts.services.mailboxes import clean_forward_list
from courriel.audit.log import record
from courriel.errors import ConflictError, NotFoundError, ValidationError
from courriel.i18n import gettext as _

CATCH_ALL = ""  # the local part claimed by "All mailboxes"
CATCH_ALL_NAMES = {"", "*", "@"}
MAX_BOUNCE_MESSAGE = 300


def alias_name(alias: Alias) -> str:
    """The alias's local part ("" for the catch-all)."""
    for address in alias.addresses.all():
        return address.local_part
    return CATCH_ALL


def alias_email(alias: Alias) -> str:
    name = alias_name(alias)
    return f"{name or '*'}@{to_unicode(alias.domain.name)}"


def aliases_of(actor: Actor, domain: Domain) -> QuerySet[Alias]:
    require_domain_manager(actor, domain)
    return (
        Alias.objects.filter(domain=domain)
        .select_related("domain")
        .prefetch_related("addresses", "mailboxes")
        .order_by("addresses__local_part")
    )


def get_alias(actor: Actor, domain: Domain, name: str) -> Alias:
    require_domain_manager(actor, domain)
    local_part = _local_part(name)
    address = (
        Address.objects.filter(domain=domain, local_part=local_part, kind=Address.ALIAS)
        .select_related("alias")
        .first()
    )
    if address is None or address.alias is None:
        if local_part == CATCH_ALL:
            message = _("No alias the catch-all in %(domain)s.")
        else:
            message = _("No alias %(name)s in %(domain)s.")
        raise NotFoundError(message % {"name": repr(name), "domain": domain.display_name})
    return address.alias


def _local_part(name: str | None) -> str:
    text = (name or "").strip().lower()
    if text in CATCH_ALL_NAMES:
        return CATCH_ALL
    if "@" in text:
        text = text.split("@", 1)[0]
    return validate_hosted_local_part(text)


def _mailboxes(domain: Domain, logins: Iterable[str | Mailbox]) -> list[Mailbox]:
    family = limits.family(domain.top)
    found: list[Mailbox] = []
    for item in logins:
        login = item.login if isinstance(item, Mailbox) else item.strip().lower()
        if not login:
            continue
        mailbox = Mailbox.objects.filter(family, login=login).first()
        if mailbox is None:
            raise ValidationError(
                _("No mailbox %(login)s in %(domain)s to deliver to.")
                % {"login": repr(login), "domain": domain.top.display_name},
                field="mailboxes",
            )
        if mailbox not in found:
            found.append(mailbox)
    return found


def _check_destinations(
    mailboxes: list[Mailbox], forward_to: list[str], everyone: bool, bounce: bool, message: str
) -> None:
    if len(message) > MAX_BOUNCE_MESSAGE:
        raise ValidationError(
            _("The bounce message is too long (at most %(count)s characters).")
            % {"count": MAX_BOUNCE_MESSAGE},
            field="bounce_message",
        )
    if any(ord(c) < 32 for c in message):
        raise ValidationError(
            _("The bounce message must be a single line."), field="bounce_message"
        )
    if bounce and (mailboxes or forward_to or everyone):
        raise ValidationError(
            _("An alias that bounces mail cannot also deliver or forward it."), field="bounce"
        )
    if not (bounce or mailboxes or forward_to or everyone):
        raise ValidationError(
            _(
                "Choose where the alias sends mail: a mailbox, other addresses, everyone "
                "in the domain, or a bounce."
            ),
            field="destinations",
        )


@transaction.atomic
def create_alias(
    actor: Actor,
    domain: Domain,
    name: str | None,
    *,
    mailboxes: Iterable[str | Mailbox] = (),
    forward_to: Iterable[str] = (),
    everyone: bool = False,
    bounce: bool = False,
    bounce_message: str = "",
    description: str = "",
) -> Alias:
    require_domain_manager(actor, domain)
    mailboxes, forward_to = list(mailboxes), list(forward_to)
    caps.alias_destinations(len(mailboxes) + len(forward_to), "forward_to")
    description = caps.name(description, "description")
    local_part = _local_part(name)
    targets = _mailboxes(domain, mailboxes)
    forwards = clean_forward_list(forward_to, within=domain, most=caps.ALIAS_DESTINATIONS)
    bounce_message = (bounce_message or "").strip()
    _check_destinations(targets, forwards, everyone, bounce, bounce_message)
    _ensure_free(domain, local_part)
    alias = Alias.objects.create(
        domain=domain,
        forward_to=forwards,
        everyone=everyone,
        bounce=bounce,
        bounce_message=bounce_message,
        description=description,
    )
    alias.mailboxes.set(targets)
    Address.objects.create(domain=domain, local_part=local_part, kind=Address.ALIAS, alias=alias)
    record(
        actor,
        "alias.create",
        f"{local_part or '*'}@{domain.name}",
        domain=domain.name,
        mailboxes=[m.login for m in targets],
        forward_to=forwards,
        everyone=everyone,
        bounce=bounce,
    )
    return alias


def _ensure_free(domain: Domain, local_part: str) -> None:
    existing = Address.objects.filter(domain=domain, local_part=local_part).select_related(
        "mailbox"
    )
    address = existing.first()
    if address is None:
        return
    shown = _("The catch-all") if local_part == CATCH_ALL else f"{local_part}@{domain.display_name}"
    if address.mailbox_id:
        raise ConflictError(
            _("%(address)s is already an address of mailbox %(login)s.")
            % {"address": shown, "login": address.mailbox.login}  # type: ignore[union-attr]
        )
    raise ConflictError(_("%(address)s already exists as an alias.") % {"address": shown})


def create_default_alias(domain: Domain, local_part: str, owner: Mailbox) -> Alias | None:
    """abuse@, hostmaster@, postmaster@, webmaster@ for a new domain, to the owner."""
    if Address.objects.filter(domain=domain, local_part=local_part).exists():
        return None
    alias = Alias.objects.create(domain=domain, description="created with the domain")
    alias.mailboxes.set([owner])
    Address.objects.create(domain=domain, local_part=local_part, kind=Address.ALIAS, alias=alias)
    return alias


@transaction.atomic
def modify_alias(actor: Actor, alias: Alias, **changes: Any) -> Alias:
    require_domain_manager(actor, alias.domain)
    allowed = {
        "name",
        "mailboxes",
        "forward_to",
        "everyone",
        "bounce",
        "bounce_message",
        "description",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(
            _("Cannot change %(fields)s of an alias.") % {"fields": ", ".join(sorted(unknown))}
        )
    domain = alias.domain
    for key in ("mailboxes", "forward_to"):
        if key in changes:
            changes[key] = list(changes[key] or [])
    caps.alias_destinations(
        len(changes.get("mailboxes", alias.mailboxes.all()))
        + len(changes.get("forward_to", alias.forward_to)),
        "forward_to",
    )
    if "description" in changes:
        changes["description"] = caps.name(str(changes["description"] or ""), "description")
    targets = (
        _mailboxes(domain, changes["mailboxes"])
        if "mailboxes" in changes
        else list(alias.mailboxes.all())
    )
    forwards = (
        clean_forward_list(changes["forward_to"], within=domain, most=caps.ALIAS_DESTINATIONS)
        if "forward_to" in changes
        else alias.forward_to
    )
    everyone = bool(changes.get("everyone", alias.everyone))
    bounce = bool(changes.get("bounce", alias.bounce))
    message = str(changes.get("bounce_message", alias.bounce_message) or "").strip()
    _check_destinations(targets, forwards, everyone, bounce, message)
    if "name" in changes:
        local_part = _local_part(changes["name"])
        address = alias.addresses.get()
        if address.local_part != local_part:
            _ensure_free(domain, local_part)
            address.local_part = local_part
            address.save(update_fields=["local_part"])
    alias.forward_to, alias.everyone, alias.bounce, alias.bounce_message = (
        forwards,
        everyone,
        bounce,
        message,
    )
    if "description" in changes:
        alias.description = changes["description"]
    alias.save()
    alias.mailboxes.set(targets)
    record(
        actor,
        "alias.modify",
        alias_email(alias),
        domain=domain.name,
        **{
            k: ([m if isinstance(m, str) else m.login for m in v] if k == "mailboxes" else v)
            for k, v in changes.items()
        },
    )
    return alias


@transaction.atomic
def delete_aliases(actor: Actor, aliases: Iterable[Alias]) -> list[str]:
    deleted = []
    for alias in aliases:
        require_domain_manager(actor, alias.domain)
        email = alias_email(alias)
        record(actor, "alias.delete", email, domain=alias.domain.name)
        deleted.append(email)
        alias.delete()
    return deleted


def describe_destinations(alias: Alias) -> list[str]:
    """Lines like the manual's "Alias destinations" column."""
    lines = [_("Mailbox %(login)s") % {"login": m.login} for m in alias.mailboxes.all()]
    lines += [_("Address %(address)s") % {"address": address} for address in alias.forward_to]
    if alias.everyone:
        lines.append(_("Everyone in the domain"))
    if alias.bounce:
        bounce = _("Bounce")
        lines.append(f"{bounce}: {alias.bounce_message}" if alias.bounce_message else bounce)
    return lines
