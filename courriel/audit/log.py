"""Recording changes. Services call `record` inside their transaction, so an entry
exists exactly when the change it describes was committed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from courriel.audit.models import AuditEntry

if TYPE_CHECKING:
    from courriel.accounts.permissions import Actor

# Never written to the log, whatever a caller passes.
_SECRET_DETAILS = {"password", "password_hash", "secret", "token"}


def record(
    actor: Actor, action: str, target: str, *, domain: str = "", **details: Any
) -> AuditEntry:
    from django.db import transaction

    from courriel.accounts.routing_cache import bump

    clean = {key: value for key, value in details.items() if key not in _SECRET_DETAILS}
    # Every change to accounts is recorded here: the mail plane's routing cache is
    # told once the change is committed.
    transaction.on_commit(bump)
    return AuditEntry.objects.create(
        actor=actor.name,
        role=actor.role,
        action=action,
        target=target,
        domain=domain,
        details=clean,
    )


def entries_for(actor: Actor, domains: list[str] | None = None) -> QuerySet[AuditEntry]:
    """The entries an actor may read: everything for the provider; for a domain owner,
    the entries of the given domains (their own, already looked up through
    `courriel.accounts.permissions`), and nothing else."""
    found = AuditEntry.objects.all()
    if domains is not None:
        return found.filter(domain__in=domains)
    if actor.is_provider:
        return found
    return found.none()
