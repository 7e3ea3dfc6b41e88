"""Virtual servers (mail domains), their sub-servers and domain aliases.

Creating a customer domain is chapter 1 of the manual: an owner login and a strong
password are generated, the owner's mailbox is created, and abuse@, hostmaster@,
postmaster@ and webmaster@ point to it.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass

from django.db import transaction

from courriel.accounts.addresses import (
    normalize_address,
    normalize_domain,
    to_unicode,
    validate_login,
)
from courriel.accounts.dkimkeys import generate_private_key
from courriel.accounts.models import Domain, DomainAlias, HostingServer, Mailbox, Plan
from courriel.accounts.permissions import (
    Actor,
    require_domain_manager,
    require_provider,
    visible_domains,
)
from courriel.accounts.services import caps, limits, ownership
from courriel.accounts.services.mailboxes import login_taken
from courriel.accounts.services.plans import get_plan
from courriel.accounts.services.servers import get_server, pick_server
from courriel.audit.log import record
from courriel.config import get_config
from courriel.errors import ConflictError, LimitError, ValidationError
from courriel.i18n import gettext as _
from courriel.mailstore.layout import domain_home

DEFAULT_ALIASES = ("abuse", "hostmaster", "postmaster", "webmaster")
# What a virtual server can have switched on. "mail" is what every domain here is, so
# it is always on. "spam": incoming mail is scanned by rspamd (courriel.inbound), which
# exists only when [filter] rspamd_url names one. Nothing else is offered: the platform
# hosts no websites, DNS zones or log files and has no virus scanner, and a checkbox
# that does nothing lies to the customer who ticks it.
FEATURES = ("mail", "spam")
DEFAULT_FEATURES = ["mail", "spam"]


def spam_filter_configured() -> bool:
    return bool(str(get_config().filter.rspamd_url).strip())


def offered_features() -> list[str]:
    """The features a customer may switch on and off on this platform."""
    return ["spam"] if spam_filter_configured() else []


def effective_features(domain: Domain) -> list[str]:
    """What is really on for the domain: spam filtering only where a filter exists (a
    new domain asks for it by default, and gets it once the provider sets one up)."""
    offered = offered_features()
    return [f for f in domain.features or [] if f == "mail" or f in offered] or ["mail"]


@dataclass
class CreatedDomain:
    domain: Domain
    owner: Mailbox | None
    password: str | None  # generated owner password, shown once
    setup_mail_to: str | None = None  # where the "has been set up" mail goes, if anywhere
    # The contact address, when it is in the new domain itself: the mail would wait in
    # a mailbox that only the password it carries opens, so it is not sent.
    setup_mail_withheld: str | None = None


def _login_candidates(name: str) -> list[str]:
    """monsite.be -> monsite, monsite-be, monsite-be2...; accents dropped from IDNs."""
    unicode_name = to_unicode(name)
    plain = unicodedata.normalize("NFKD", unicode_name).encode("ascii", "ignore").decode()
    plain = re.sub(r"[^a-z0-9.-]", "", plain.lower()).strip(".-") or "domain"
    first = plain.split(".")[0][:30].strip("-") or "domain"
    dashed = plain.replace(".", "-")[:36].strip("-")
    return [first, dashed] + [f"{dashed[:34]}{n}" for n in range(2, 100)]


def _free_prefix(name: str) -> str:
    for candidate in _login_candidates(name):
        if not Domain.objects.filter(prefix=candidate).exists() and not login_taken(candidate):
            return candidate
    raise ConflictError(
        _("Could not find a free login for %(name)s: give --owner-login.")
        % {"name": to_unicode(name)}
    )


def _owner_login(login: str) -> str:
    value = validate_login(login)
    if Domain.objects.filter(prefix=value).exists() or login_taken(value):
        raise ConflictError(
            _("The login %(login)s is already taken.") % {"login": repr(value)},
            field="owner_login",
        )
    return value


def _clean_features(features: list[str] | None) -> list[str]:
    if features is None:
        return list(DEFAULT_FEATURES)
    cleaned = []
    for feature in features:
        value = feature.strip().lower()
        if value not in FEATURES:
            raise ValidationError(
                _("Unknown feature %(feature)s; features are: %(features)s.")
                % {"feature": repr(feature), "features": ", ".join(FEATURES)},
                field="features",
            )
        if value == "spam" and not spam_filter_configured():
            raise ValidationError(
                _(
                    "Spam filtering is not available: no spam filter is set up on this "
                    "platform ([filter] rspamd_url)."
                ),
                field="features",
            )
        if value not in cleaned:
            cleaned.append(value)
    if "mail" not in cleaned:
        cleaned.insert(0, "mail")
    return cleaned


def _clean_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValidationError(
            _("%(value)s is not an IP address.") % {"value": repr(value)}, field="ip_address"
        ) from None


def _clean_contact(value: str) -> str:
    return normalize_address(value) if value and value.strip() else ""


@transaction.atomic
def create_domain(
    actor: Actor,
    name: str,
    *,
    plan: str | Plan | None = None,
    server: str | HostingServer | None = None,
    parent: Domain | None = None,
    owner_login: str | None = None,
    password: str | None = None,
    real_name: str = "",
    description: str = "",
    contact_email: str = "",
    features: list[str] | None = None,
    ip_address: str | None = None,
) -> CreatedDomain:
    """Create a customer's virtual server, or a sub-server when `parent` is given."""
    from courriel.accounts.services import aliases as alias_service
    from courriel.accounts.services import mailboxes as mailbox_service

    ascii_name = normalize_domain(name)
    contact = _clean_contact(contact_email)
    description = caps.name(description, "description")
    features_list = _clean_features(features)
    ip = _clean_ip(ip_address)
    config = get_config()

    if parent is not None:
        require_domain_manager(actor, parent)
        if parent.is_subserver:
            raise ValidationError(
                _("%(parent)s is itself a sub-server: add the new one under %(top)s.")
                % {"parent": parent.display_name, "top": parent.top.display_name},
                field="parent",
            )
        if plan is not None and get_plan(plan).pk != parent.top.effective_plan.pk:
            raise ValidationError(
                _("A sub-server shares its parent's plan; do not give another one."),
                field="plan",
            )
        top = limits.lock_family(parent)
        claim = ownership.claim(actor, ascii_name, top)
        limits.check_can_add_server(top)
        prefix = _free_prefix(ascii_name)
        domain = Domain.objects.create(
            name=ascii_name,
            parent=top,
            plan=None,
            server=top.server,
            owner=top.owner,
            prefix=prefix,
            admin_group=top.admin_group,
            home_directory=str(domain_home(config.mail_root, ascii_name)),
            description=description or top.description,
            contact_email=contact or top.contact_email,
            ip_address=ip or top.ip_address,
            features=features_list,
            created_by=actor.name,
            dkim_private_key=generate_private_key(),
            **claim.fields(),
        )
        owner = top.owner
        generated = None
        assert owner is not None
    else:
        require_provider(actor, _("create customer domains"))
        if plan is None:
            raise ValidationError(
                _("Choose a plan for the new domain (e.g. --plan recommended)."), field="plan"
            )
        plan_obj = get_plan(plan)
        if isinstance(server, HostingServer):
            host = server
        elif server:
            host = get_server(server)
        else:
            host = pick_server(config.hostname)
        claim = ownership.claim(actor, ascii_name, None)
        prefix = _free_prefix(ascii_name) if owner_login is None else _owner_login(owner_login)
        domain = Domain.objects.create(
            name=ascii_name,
            plan=plan_obj,
            server=host,
            prefix=prefix,
            admin_group=prefix,
            home_directory=str(domain_home(config.mail_root, ascii_name)),
            description=description,
            contact_email=contact,
            ip_address=ip or host.ip_address,
            features=features_list,
            created_by=actor.name,
            dkim_private_key=generate_private_key(),
            **claim.fields(),
        )
        created = mailbox_service.create_owner_mailbox(
            domain,
            login=prefix,
            real_name=real_name or description or prefix.capitalize(),
            password=password,
        )
        owner, generated = created.mailbox, created.password
        domain.owner = owner
        domain.save(update_fields=["owner"])

    for local_part in DEFAULT_ALIASES:
        alias_service.create_default_alias(domain, local_part, owner)
    setup_mail_to = contact if contact and parent is None else None
    withheld = None
    if setup_mail_to and setup_mail_to.rpartition("@")[2] == ascii_name:
        setup_mail_to, withheld = None, setup_mail_to
    if setup_mail_to:
        _send_setup_mail_on_commit(domain, generated)
    record(
        actor,
        "domain.create",
        ascii_name,
        domain=ascii_name,
        plan=domain.effective_plan.name,
        server=domain.server.name,
        parent=parent.name if parent else None,
    )
    return CreatedDomain(
        domain=domain,
        owner=owner,
        password=generated,
        setup_mail_to=setup_mail_to,
        setup_mail_withheld=withheld,
    )


def _send_setup_mail_on_commit(domain: Domain, password: str | None) -> None:
    """Chapter 1: the access codes go to the customer once the domain exists."""

    def send() -> None:
        from courriel.delivery.notices import send_setup_mail

        send_setup_mail(domain, password)

    transaction.on_commit(send)


@transaction.atomic
def modify_domain(actor: Actor, domain: Domain, **changes: object) -> Domain:
    require_domain_manager(actor, domain)
    provider_only = {"plan", "server", "ip_address", "admin_group", "require_2fa"}
    if provider_only & set(changes):
        require_provider(
            actor,
            _(
                "change the plan, hosting server, IP address, administration group or "
                "two-factor requirement"
            ),
        )
    if "plan" in changes:
        if domain.is_subserver:
            raise ValidationError(_("A sub-server uses its parent's plan."), field="plan")
        new_plan = get_plan(changes["plan"])  # type: ignore[arg-type]
        _check_fits_plan(domain, new_plan)
        domain.plan = new_plan
    if "server" in changes:
        from courriel.cluster.moves import check_server_change

        new_server = get_server(str(changes["server"]))
        check_server_change(domain, new_server)  # between running nodes: a move
        domain.server = new_server
    if "ip_address" in changes:
        domain.ip_address = _clean_ip(changes["ip_address"])  # type: ignore[arg-type]
    if "description" in changes:
        domain.description = caps.name(str(changes["description"] or ""), "description")
    if "contact_email" in changes:
        domain.contact_email = _clean_contact(str(changes["contact_email"] or ""))
    if "features" in changes:
        domain.features = _clean_features(changes["features"])  # type: ignore[arg-type]
    if "require_2fa" in changes:
        domain.require_2fa = bool(changes["require_2fa"])
    if "admin_group" in changes:
        domain.admin_group = str(changes["admin_group"] or domain.prefix)[:64]
    unknown = set(changes) - {
        "plan",
        "server",
        "ip_address",
        "description",
        "contact_email",
        "features",
        "admin_group",
        "require_2fa",
    }
    if unknown:
        raise ValidationError(
            _("Cannot change %(fields)s of a virtual server.")
            % {"fields": ", ".join(sorted(unknown))}
        )
    domain.save()
    record(
        actor,
        "domain.modify",
        domain.name,
        domain=domain.name,
        **{key: str(value) for key, value in changes.items()},
    )
    return domain


def _check_fits_plan(domain: Domain, plan: Plan) -> None:
    current = limits.usage(domain)
    problems = []
    for used, most, what in (
        (current.mailboxes, plan.max_mailboxes, _("%(used)s mailboxes (plan allows %(most)s)")),
        (
            current.servers,
            plan.max_servers,
            _("%(used)s virtual servers (plan allows %(most)s)"),
        ),
        (
            current.domain_aliases,
            plan.max_domain_aliases,
            _("%(used)s domain aliases (plan allows %(most)s)"),
        ),
    ):
        if most is not None and used > most:
            problems.append(what % {"used": used, "most": most})
    if plan.mail_quota is not None:
        too_big = Mailbox.objects.filter(limits.family(domain.top), quota__gt=plan.mail_quota)
        if too_big.exists():
            problems.append(_("mailbox quotas above the plan's mail quota"))
    if problems:
        raise LimitError(
            _("%(domain)s does not fit plan %(plan)s: it has %(problems)s.")
            % {"domain": domain.display_name, "plan": plan.name, "problems": "; ".join(problems)}
        )


@transaction.atomic
def delete_domain(actor: Actor, domain: Domain) -> list[str]:
    """Delete a virtual server, its sub-servers, mailboxes and aliases.

    Maildirs are moved to `<data>/deleted` once the deletion is committed.
    Returns the names of the deleted domains.
    """
    from courriel.accounts.services.mailboxes import retire_maildirs_on_commit

    if domain.is_subserver:
        require_domain_manager(actor, domain)
    else:
        require_provider(actor, _("delete a customer's virtual server"))
    deleted: list[str] = []
    for sub in Domain.objects.filter(parent=domain):
        deleted += delete_domain(actor, sub)
    mailboxes = list(Mailbox.objects.filter(domain=domain))
    if domain.owner_id and not domain.is_subserver:
        Domain.objects.filter(pk=domain.pk).update(owner=None)
    retire_maildirs_on_commit(mailboxes)
    record(actor, "domain.delete", domain.name, domain=domain.name, mailboxes=len(mailboxes))
    deleted.append(domain.name)
    domain.delete()
    return deleted


def list_domains(actor: Actor, search: str = "") -> list[Domain]:
    domains = visible_domains(actor)
    if search:
        domains = domains.filter(name__icontains=search.strip().lower())
    return list(domains)


# --- domain aliases -------------------------------------------------------------------


@transaction.atomic
def add_domain_alias(actor: Actor, domain: Domain, name: str) -> DomainAlias:
    require_domain_manager(actor, domain)
    ascii_name = normalize_domain(name)
    top = limits.lock_family(domain)
    claim = ownership.claim(actor, ascii_name, top)
    limits.check_can_add_domain_alias(domain)
    alias = DomainAlias.objects.create(name=ascii_name, domain=domain, **claim.fields())
    record(actor, "domain_alias.add", ascii_name, domain=domain.name, verified=not alias.pending)
    return alias


def list_domain_aliases(actor: Actor, domain: Domain) -> list[DomainAlias]:
    require_domain_manager(actor, domain)
    return list(domain.domain_aliases.all())


@transaction.atomic
def delete_domain_alias(actor: Actor, domain: Domain, name: str) -> None:
    require_domain_manager(actor, domain)
    ascii_name = normalize_domain(name)
    alias = DomainAlias.objects.filter(domain=domain, name=ascii_name).first()
    if alias is None:
        raise ValidationError(
            _("%(name)s is not an alias of %(domain)s.")
            % {"name": to_unicode(ascii_name), "domain": domain.display_name}
        )
    record(actor, "domain_alias.delete", ascii_name, domain=domain.name)
    alias.delete()
