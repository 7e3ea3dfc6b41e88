"""Plan limits and usage, counted over a customer's family of virtual servers.

A sub-server shares its parent's plan, so every count is over the parent and its
sub-servers together. The owner's own mailbox does not count against the mailbox
limit (the manual: owner + monsite0001 on "recommended" leaves 9 more), while the
top-level server itself counts as one of the virtual servers ("1 out of 5").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.db.models import Q

from courriel.accounts.models import Alias, Domain, DomainAlias, Mailbox
from courriel.errors import LimitError, ValidationError
from courriel.i18n import format_size
from courriel.i18n import gettext as _


@dataclass(frozen=True)
class Usage:
    mailboxes: int
    max_mailboxes: int | None
    servers: int
    max_servers: int | None
    domain_aliases: int
    max_domain_aliases: int | None
    aliases: int
    mail_quota: int | None
    web_quota: int | None

    @property
    def additional_mailboxes(self) -> int | None:
        """How many more mailboxes may be added (None: no limit)."""
        if self.max_mailboxes is None:
            return None
        return max(0, self.max_mailboxes - self.mailboxes)

    def as_dict(self) -> dict[str, int | None]:
        data = asdict(self)
        data["additional_mailboxes"] = self.additional_mailboxes
        return data


def family(top: Domain) -> Q:
    """Filter for objects whose domain is `top` or one of its sub-servers."""
    return Q(domain=top) | Q(domain__parent=top)


def usage(domain: Domain) -> Usage:
    top = domain.top
    plan = top.effective_plan
    return Usage(
        mailboxes=Mailbox.objects.filter(family(top)).exclude(pk=top.owner_id).count(),
        max_mailboxes=plan.max_mailboxes,
        servers=1 + Domain.objects.filter(parent=top).count(),
        max_servers=plan.max_servers,
        domain_aliases=DomainAlias.objects.filter(family(top)).count(),
        max_domain_aliases=plan.max_domain_aliases,
        aliases=Alias.objects.filter(family(top)).count(),
        mail_quota=plan.mail_quota,
        web_quota=plan.web_quota,
    )


@dataclass(frozen=True)
class Counts:
    """What one virtual server holds by itself (a sub-server's pages show these, the
    plan's limits being counted over the whole family)."""

    mailboxes: int
    aliases: int
    domain_aliases: int


def counts(domain: Domain) -> Counts:
    return Counts(
        mailboxes=Mailbox.objects.filter(domain=domain).exclude(pk=domain.top.owner_id).count(),
        aliases=Alias.objects.filter(domain=domain).count(),
        domain_aliases=DomainAlias.objects.filter(domain=domain).count(),
    )


def lock_family(domain: Domain) -> Domain:
    """Lock the top-level domain row so that concurrent creations are counted one by one."""
    return Domain.objects.select_for_update().get(pk=domain.top.pk)


def check_can_add_mailboxes(domain: Domain, count: int = 1) -> None:
    current = usage(domain)
    left = current.additional_mailboxes
    if left is not None and count > left:
        raise LimitError(
            _(
                "The plan of %(domain)s allows %(limit)s mailboxes and all of them are used: "
                "delete a mailbox or ask your provider for a larger plan."
            )
            % {"domain": domain.top.display_name, "limit": current.max_mailboxes}
        )


def check_can_add_server(domain: Domain) -> None:
    current = usage(domain)
    if current.max_servers is not None and current.servers >= current.max_servers:
        raise LimitError(
            _(
                "The plan of %(domain)s allows %(limit)s virtual servers and %(used)s are "
                "used: delete one or ask for a larger plan."
            )
            % {
                "domain": domain.top.display_name,
                "limit": current.max_servers,
                "used": current.servers,
            }
        )


def check_can_add_domain_alias(domain: Domain) -> None:
    current = usage(domain)
    limit = current.max_domain_aliases
    if limit is not None and current.domain_aliases >= limit:
        raise LimitError(
            _("The plan of %(domain)s allows %(limit)s domain aliases and all of them are used.")
            % {"domain": domain.top.display_name, "limit": limit}
        )


def check_mailbox_quota(domain: Domain, quota: int | None) -> None:
    """A mailbox quota is never above the domain's total mail quota."""
    total = domain.top.effective_plan.mail_quota
    if quota is not None and quota <= 0:
        raise ValidationError(_("A mailbox quota must be more than zero."), field="quota")
    if quota is not None and total is not None and quota > total:
        raise LimitError(
            _(
                "A mailbox quota of %(quota)s is more than the %(total)s of mail space of "
                "%(domain)s: choose at most %(total)s."
            )
            % {
                "quota": format_size(quota),
                "total": format_size(total),
                "domain": domain.top.display_name,
            },
            field="quota",
        )


def disk_usage(domain: Domain) -> int:
    """Bytes of mail stored by every mailbox of the customer's family of servers."""
    from courriel.config import get_config
    from courriel.mailstore.quota import maildir_usage

    root = get_config().mail_root
    return sum(
        maildir_usage(root / path)
        for path in Mailbox.objects.filter(family(domain.top)).values_list("maildir", flat=True)
    )
