"""Who may see and change what: the one place tenant isolation is decided.

Every service takes an `Actor`. Look-ups go through the `visible_*` querysets, so an
object of another customer is simply not found (NotFoundError), through any
interface; it is never "found but forbidden", which would reveal that it exists.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from django.db.models import QuerySet

from courriel.accounts.addresses import normalize_domain
from courriel.errors import NotFoundError, PermissionDeniedError, ValidationError
from courriel.i18n import gettext as _

if TYPE_CHECKING:
    from courriel.accounts.models import Domain, Mailbox

Role = Literal["provider", "owner", "mailbox"]


@dataclass(frozen=True)
class Actor:
    """The person or process on whose behalf a service runs, for permissions and audit."""

    role: Role
    name: str
    mailbox_id: int | None = None
    user_id: int | None = None
    # A person at a network door (a panel session, an API token), not trusted code (the
    # CLI, the services themselves): such a person types their current password again
    # before changing their own credentials (courriel.accounts.signin.prove).
    remote: bool = False

    @classmethod
    def cli(cls) -> Actor:
        try:
            who = getpass.getuser()
        except Exception:  # no passwd entry in some containers
            who = "unknown"
        return cls("provider", f"cli:{who}")

    @classmethod
    def system(cls, what: str = "system") -> Actor:
        return cls("provider", what)

    @classmethod
    def for_mailbox(cls, mailbox: Mailbox, *, remote: bool = False) -> Actor:
        role: Role = "owner" if mailbox.owned_domains.exists() else "mailbox"
        return cls(role, mailbox.login, mailbox_id=mailbox.pk, remote=remote)

    def owns(self, holder: object) -> bool:
        """Whether `holder` (a Mailbox or a provider admin's User) is this very person
        (an admin looking at the panel as an owner is not that owner)."""
        from django.contrib.auth.models import User

        from courriel.accounts.models import Mailbox

        if isinstance(holder, Mailbox):
            return self.mailbox_id == holder.pk and self.user_id is None
        if isinstance(holder, User):
            return self.user_id == holder.pk and self.mailbox_id is None
        return False

    @property
    def is_provider(self) -> bool:
        return self.role == "provider"


def visible_domains(actor: Actor) -> QuerySet[Domain]:
    from courriel.accounts.models import Domain

    domains = Domain.objects.select_related("parent", "plan", "server", "owner")
    if actor.is_provider:
        return domains.all()
    if actor.role == "owner":
        return domains.filter(owner_id=actor.mailbox_id)
    return domains.none()


def get_domain(actor: Actor, name: str | Domain) -> Domain:
    from courriel.accounts.models import Domain

    if isinstance(name, Domain):
        name = name.name
    try:
        ascii_name = normalize_domain(name)
    except ValidationError:
        raise NotFoundError(_("No virtual server named %(name)s.") % {"name": repr(name)}) from None
    try:
        return visible_domains(actor).get(name=ascii_name)
    except Domain.DoesNotExist:
        raise NotFoundError(
            _("No virtual server named %(name)s. `courriel domain list` shows yours.")
            % {"name": repr(name)}
        ) from None


def visible_mailboxes(actor: Actor) -> QuerySet[Mailbox]:
    from courriel.accounts.models import Mailbox

    mailboxes = Mailbox.objects.select_related("domain")
    if actor.is_provider:
        return mailboxes.all()
    if actor.role == "owner":
        return mailboxes.filter(domain__owner_id=actor.mailbox_id)
    return mailboxes.filter(pk=actor.mailbox_id)


def get_mailbox(actor: Actor, login: str, domain: Domain | None = None) -> Mailbox:
    from courriel.accounts.models import Mailbox

    queryset = visible_mailboxes(actor)
    if domain is not None:
        queryset = queryset.filter(domain=domain)
    try:
        return queryset.get(login=(login or "").strip().lower())
    except Mailbox.DoesNotExist:
        if domain is None:
            message = _("No mailbox with login %(login)s.")
        else:
            message = _("No mailbox with login %(login)s in %(domain)s.")
        where = {"login": repr(login), "domain": domain.display_name if domain else ""}
        raise NotFoundError(message % where) from None


def require_provider(actor: Actor, what: str) -> None:
    if not actor.is_provider:
        raise PermissionDeniedError(_("Only the hosting provider can %(what)s.") % {"what": what})


def require_domain_manager(actor: Actor, domain: Domain) -> None:
    """The provider, or the owner of this domain (or of its parent)."""
    if actor.is_provider:
        return
    if actor.role == "owner" and domain.owner_id == actor.mailbox_id:
        return
    raise NotFoundError(
        _("No virtual server named %(name)s.") % {"name": repr(domain.display_name)}
    )


# What a mailbox user may change about their own mailbox (self-service).
SELF_SERVICE_FIELDS = frozenset(
    {
        "password",
        "real_name",
        "deliver_normally",
        "forward_to",
        "autoreply_enabled",
        "autoreply_message",
        "autoreply_interval",
        "autoreply_start",
        "autoreply_end",
        "language",
    }
)


def require_mailbox_change(actor: Actor, mailbox: Mailbox, fields: set[str]) -> None:
    if actor.is_provider:
        return
    if actor.role == "owner" and mailbox.domain.owner_id == actor.mailbox_id:
        return
    if actor.mailbox_id == mailbox.pk:
        forbidden = fields - SELF_SERVICE_FIELDS
        if not forbidden:
            return
        raise PermissionDeniedError(
            _("Only the domain owner can change %(fields)s.")
            % {"fields": ", ".join(sorted(forbidden))}
        )
    raise NotFoundError(_("No mailbox with login %(login)s.") % {"login": repr(mailbox.login)})
