"""Account plans (simple / recommended / large): data the provider can edit and add to."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext_noop

from courriel.accounts.models import Domain, Plan
from courriel.accounts.permissions import Actor, require_provider
from courriel.accounts.services.fields import fitting
from courriel.audit.log import record
from courriel.errors import ConflictError, LimitError, NotFoundError, ValidationError
from courriel.i18n import format_size
from courriel.i18n import gettext as _

GB = 1024**3
MB = 1024**2

# The manual's chapter 4 table. The labels are stored in English and shown in the
# reader's language (`Plan.__str__`); a label the provider writes is shown as written.
DEFAULT_PLANS = [
    {
        "name": "simple",
        "label": gettext_noop("Simple"),
        "web_quota": 50 * MB,
        "mail_quota": 3 * GB,
        "max_mailboxes": 1,
        "max_servers": 1,
        "max_domain_aliases": None,
        "default_mailbox_quota": 3 * GB,
    },
    {
        "name": "recommended",
        "label": gettext_noop("Recommended"),
        "web_quota": 10 * GB,
        "mail_quota": 30 * GB,
        "max_mailboxes": 10,
        "max_servers": 5,
        "max_domain_aliases": None,
        "default_mailbox_quota": 3 * GB,
    },
    {
        "name": "large",
        "label": gettext_noop("Large"),
        "web_quota": 100 * GB,
        "mail_quota": 300 * GB,
        "max_mailboxes": 100,
        "max_servers": 15,
        "max_domain_aliases": None,
        "default_mailbox_quota": 3 * GB,
    },
]

LIMIT_FIELDS = (
    "web_quota",
    "mail_quota",
    "max_mailboxes",
    "max_servers",
    "max_domain_aliases",
    "default_mailbox_quota",
)


def _check_settings(limits: dict[str, object]) -> None:
    unknown = set(limits) - set(LIMIT_FIELDS)
    if unknown:
        raise ValidationError(
            _("Unknown plan setting(s): %(names)s.") % {"names": ", ".join(sorted(unknown))}
        )


def seed_default_plans() -> int:
    """Create the manual's three plans when missing; returns how many were created."""
    created = 0
    for values in DEFAULT_PLANS:
        _, made = Plan.objects.get_or_create(name=values["name"], defaults=values)
        created += int(made)
    return created


def get_plan(name: str | Plan) -> Plan:
    if isinstance(name, Plan):
        return name
    try:
        return Plan.objects.get(name=(name or "").strip().lower())
    except Plan.DoesNotExist:
        known = ", ".join(Plan.objects.values_list("name", flat=True)) or _("none")
        raise NotFoundError(
            _("No plan named %(name)s (plans: %(known)s).") % {"name": repr(name), "known": known}
        ) from None


def _validate(values: dict[str, object]) -> None:
    for key in LIMIT_FIELDS:
        value = values.get(key)
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValidationError(
                _("%(key)s must be a positive number or unlimited.") % {"key": key}, field=key
            )
    quota, default = values.get("mail_quota"), values.get("default_mailbox_quota")
    if isinstance(quota, int) and isinstance(default, int) and default > quota:
        raise ValidationError(
            _(
                "The default mailbox quota (%(default)s) cannot be more than the plan's mail "
                "quota (%(quota)s)."
            )
            % {"default": format_size(default), "quota": format_size(quota)},
            field="default_mailbox_quota",
        )


@transaction.atomic
def create_plan(actor: Actor, name: str, *, label: str = "", **limits: int | None) -> Plan:
    require_provider(actor, _("create plans"))
    slug = (name or "").strip().lower()
    if not slug or not slug.replace("-", "").replace("_", "").isalnum():
        raise ValidationError(
            _("%(name)s is not a valid plan name: use letters, digits, '-' and '_'.")
            % {"name": repr(name)},
            field="name",
        )
    slug = fitting(Plan, "name", slug)
    label = fitting(Plan, "label", label)
    if Plan.objects.filter(name=slug).exists():
        raise ConflictError(
            _("A plan named %(name)s already exists.") % {"name": repr(slug)}, field="name"
        )
    _check_settings(limits)
    values: dict[str, object] = {key: limits.get(key) for key in LIMIT_FIELDS}
    if "default_mailbox_quota" not in limits:
        values["default_mailbox_quota"] = (
            3 * GB
            if values["mail_quota"] is None
            else min(
                3 * GB,
                int(values["mail_quota"]),  # type: ignore[call-overload]
            )
        )
    _validate(values)
    plan = Plan.objects.create(name=slug, label=label or slug.capitalize(), **values)
    record(actor, "plan.create", slug, **{k: v for k, v in values.items()})
    return plan


@transaction.atomic
def modify_plan(
    actor: Actor, plan: Plan, *, label: str | None = None, **limits: int | None
) -> Plan:
    require_provider(actor, _("change plans"))
    _check_settings(limits)
    values = {key: getattr(plan, key) for key in LIMIT_FIELDS} | limits
    _validate(values)
    _check_domains_fit(plan, values)
    for key, value in limits.items():
        setattr(plan, key, value)
    if label is not None:
        plan.label = fitting(Plan, "label", label)
    plan.save()
    record(actor, "plan.modify", plan.name, **limits)
    return plan


def _check_domains_fit(plan: Plan, values: dict[str, object]) -> None:
    """Refuse to lower a limit below what a domain on this plan already uses."""
    from courriel.accounts.services.limits import usage

    checks = (
        (
            "max_mailboxes",
            "mailboxes",
            _(
                "%(domain)s already has %(used)s mailboxes, more than %(limit)s: move it to "
                "another plan first."
            ),
        ),
        (
            "max_servers",
            "servers",
            _(
                "%(domain)s already has %(used)s virtual servers, more than %(limit)s: move it "
                "to another plan first."
            ),
        ),
        (
            "max_domain_aliases",
            "domain_aliases",
            _(
                "%(domain)s already has %(used)s domain aliases, more than %(limit)s: move it "
                "to another plan first."
            ),
        ),
    )
    for domain in Domain.objects.filter(plan=plan, parent__isnull=True):
        current = usage(domain)
        for limit_key, used_key, message in checks:
            limit = values.get(limit_key)
            used = getattr(current, used_key)
            if isinstance(limit, int) and used > limit:
                raise LimitError(
                    message % {"domain": domain.display_name, "used": used, "limit": limit}
                )


@transaction.atomic
def delete_plan(actor: Actor, plan: Plan) -> None:
    require_provider(actor, _("delete plans"))
    count = Domain.objects.filter(plan=plan).count()
    if count:
        raise ConflictError(
            _("Plan %(name)s is used by %(count)s virtual servers.")
            % {"name": plan.name, "count": count}
        )
    record(actor, "plan.delete", plan.name)
    plan.delete()
