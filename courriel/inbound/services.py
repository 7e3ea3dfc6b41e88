"""Use cases of the incoming-check settings, for the panel, the API and the CLI.

The provider decides how DMARC failures of mail to a domain are treated (follow the
sender's policy, never refuse but keep in Junk, or only report); a domain's owner (or
the provider) sets a mailbox's spam thresholds. Every change is audited, which also
tells the mail plane's routing cache to forget what it knew.
"""

from __future__ import annotations

import math
from typing import Any

from django.db import transaction

from courriel.accounts.models import Domain, Mailbox
from courriel.accounts.permissions import (
    Actor,
    get_domain,
    get_mailbox,
    require_domain_manager,
    require_mailbox_change,
    require_provider,
)
from courriel.audit.log import record
from courriel.config import get_config
from courriel.errors import ValidationError
from courriel.i18n import gettext as _
from courriel.inbound.models import DomainFiltering, MailboxSpam
from courriel.inbound.schemas import DomainFilteringOut, MailboxSpamOut

DMARC_CHOICES = tuple(choice for choice, _label in DomainFiltering.DMARC_CHOICES)
MAX_SCORE = 1000.0
KEEP: Any = object()


def _domain_out(domain: Domain) -> DomainFilteringOut:
    setting = DomainFiltering.objects.filter(domain=domain).first()
    return DomainFilteringOut(
        domain=domain.name,
        spam_filtering="spam" in (domain.features or []),
        dmarc=setting.dmarc if setting else DomainFiltering.FOLLOW,
        dmarc_enforced=bool(get_config().auth.dmarc_enforce),
    )


def domain_filtering(actor: Actor, domain_name: str | Domain) -> DomainFilteringOut:
    domain = get_domain(actor, domain_name)
    require_domain_manager(actor, domain)
    return _domain_out(domain)


@transaction.atomic
def set_domain_dmarc(actor: Actor, domain_name: str | Domain, dmarc: str) -> DomainFilteringOut:
    """How DMARC failures of mail to this domain are treated (the provider's call)."""
    domain = get_domain(actor, domain_name)
    require_domain_manager(actor, domain)
    require_provider(actor, _("change how DMARC failures are treated"))
    value = (dmarc or "").strip().lower()
    if value not in DMARC_CHOICES:
        raise ValidationError(
            _("Unknown DMARC treatment %(value)s; choose one of: %(choices)s.")
            % {"value": repr(dmarc), "choices": ", ".join(DMARC_CHOICES)},
            field="dmarc",
        )
    setting = DomainFiltering.objects.select_for_update().get_or_create(domain=domain)[0]
    setting.dmarc = value
    setting.changed_by = actor.name
    setting.save()
    record(actor, "filter.domain", domain.name, domain=domain.name, dmarc=value)
    return _domain_out(domain)


def _mailbox(actor: Actor, domain_name: str | Domain | None, login: str) -> Mailbox:
    domain = get_domain(actor, domain_name) if domain_name and actor.role != "mailbox" else None
    return get_mailbox(actor, login, domain)


def _mailbox_out(mailbox: Mailbox) -> MailboxSpamOut:
    setting = MailboxSpam.objects.filter(mailbox=mailbox).first()
    return MailboxSpamOut(
        login=mailbox.login,
        domain=mailbox.domain.name,
        junk_score=setting.junk_score if setting else None,
        reject_score=setting.reject_score if setting else None,
        spam_filtering="spam" in (mailbox.domain.features or []),
    )


def mailbox_spam(actor: Actor, domain_name: str | Domain | None, login: str) -> MailboxSpamOut:
    return _mailbox_out(_mailbox(actor, domain_name, login))


def clean_score(value: Any, field: str) -> float | None:
    """A spam score from a form, the API or the command line; "" or "default": None."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "default")):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(
            _("%(value)s is not a spam score (a number such as 6 or 7.5).")
            % {"value": repr(value)},
            field=field,
        ) from None
    if not math.isfinite(number) or abs(number) > MAX_SCORE:
        raise ValidationError(
            _("A spam score must be between -%(max)d and %(max)d.") % {"max": int(MAX_SCORE)},
            field=field,
        )
    return number


@transaction.atomic
def set_mailbox_spam(
    actor: Actor,
    domain_name: str | Domain | None,
    login: str,
    *,
    junk_score: Any = KEEP,
    reject_score: Any = KEEP,
) -> MailboxSpamOut:
    """Set a mailbox's thresholds (its domain's owner or the provider): from
    `junk_score` its mail goes to the Junk folder, from `reject_score` it is refused;
    None goes back to rspamd's own actions."""
    mailbox = _mailbox(actor, domain_name, login)
    require_mailbox_change(actor, mailbox, {"spam"})
    setting = MailboxSpam.objects.select_for_update().get_or_create(mailbox=mailbox)[0]
    if junk_score is not KEEP:
        setting.junk_score = clean_score(junk_score, "junk_score")
    if reject_score is not KEEP:
        setting.reject_score = clean_score(reject_score, "reject_score")
    if (
        setting.junk_score is not None
        and setting.reject_score is not None
        and setting.reject_score < setting.junk_score
    ):
        raise ValidationError(
            _("The refusal score cannot be below the Junk folder score."), field="reject_score"
        )
    setting.changed_by = actor.name
    setting.save()
    record(
        actor,
        "filter.mailbox",
        mailbox.login,
        domain=mailbox.domain.name,
        junk_score=setting.junk_score,
        reject_score=setting.reject_score,
    )
    return _mailbox_out(mailbox)
