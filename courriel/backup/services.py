"""What the panel, the API and the CLI call: backups as each actor may see them.

The provider sees every snapshot, dump and the last result, and restores anything; a
domain owner sees, in each snapshot, only the mailboxes of their own domains and
restores only those (another customer's mailbox is simply not found).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from courriel.accounts.models import Domain, Mailbox
from courriel.accounts.permissions import Actor, get_domain, require_provider, visible_mailboxes
from courriel.backup import database, status, store
from courriel.backup.policy import load_policy, local_now
from courriel.backup.restore import RestoreReport, restore_mail
from courriel.cluster.placement import Peer
from courriel.errors import ServiceUnavailableError
from courriel.i18n import gettext as _


def _visible_pairs(actor: Actor, domain: Domain | None = None) -> set[tuple[str, str]] | None:
    """(domain, login) of the mailboxes the actor manages (the provider, with a domain:
    that domain's and its sub-servers'); None: every mailbox."""
    if actor.is_provider:
        if domain is None:
            return None
        family = Mailbox.objects.filter(Q(domain=domain) | Q(domain__parent=domain))
        return set(family.values_list("domain__name", "login"))
    return set(visible_mailboxes(actor).values_list("domain__name", "login"))


def describe(snapshot: store.Snapshot, pairs: set[tuple[str, str]] | None) -> dict[str, Any]:
    info = snapshot.info
    shown: dict[str, Any] = {
        "name": snapshot.name,
        "id": snapshot.id,
        "kind": snapshot.kind,
        "taken_at": info["taken_at"],
    }
    if pairs is None:
        count = sum(len(logins) for logins in info["mailboxes"].values())
        shown.update(
            mailboxes=count,
            files=info["files"],
            bytes=info["bytes"],
            bytes_copied=info["bytes_copied"],
            database_dump=info.get("database_dump"),
        )
        return shown
    mine = [
        counts
        for domain, logins in info["mailboxes"].items()
        for login, counts in logins.items()
        if (domain, login) in pairs
    ]
    shown.update(mailboxes=len(mine), files=sum(c[0] for c in mine), bytes=sum(c[1] for c in mine))
    return shown


def _home_elsewhere(domain: Domain) -> Peer | None:
    """The node holding the domain's mail (and so its backups), if not this one."""
    from courriel.cluster.placement import is_here, peer

    if is_here(domain.server_id):
        return None
    target = peer(domain.server_id) if domain.server_id is not None else None
    if target is None:
        raise ServiceUnavailableError(
            _("The hosting server holding %(domain)s is not running; try again later.")
            % {"domain": domain.display_name}
        )
    return target


def list_snapshots(actor: Actor, domain: Domain | None = None) -> list[dict[str, Any]]:
    """Snapshots, newest first, as this actor may see them; with a domain, those of
    the hosting server that holds its mail (asked there if it is another)."""
    if domain is not None and (home := _home_elsewhere(domain)) is not None:
        from courriel.cluster.rpc import actor_fields, call_service

        body = {"actor": actor_fields(actor), "domain": domain.name}
        return call_service(home, "snapshots", body)
    pairs = _visible_pairs(actor, domain)
    directory = load_policy().directory
    every = sorted(store.snapshots(directory), key=lambda s: s.taken_at, reverse=True)
    shown = [describe(s, pairs) for s in every]
    return shown if pairs is None else [s for s in shown if s["mailboxes"]]


def overview(actor: Actor) -> dict[str, Any]:
    """Everything `courriel backup list` shows (provider only)."""
    require_provider(actor, _("see the backups of every customer"))
    directory = load_policy().directory
    return {
        "directory": str(directory),
        "status": status.read(),
        "snapshots": list_snapshots(actor),
        "database_dumps": [
            {"name": d.name, "taken_at": d.info["taken_at"], "size": d.info["size"]}
            for d in database.dumps(directory)
        ],
    }


def restore(
    actor: Actor,
    domain: str,
    *,
    login: str | None = None,
    folder: str | None = None,
    message: str | None = None,
    snapshot: str | None = None,
    in_place: bool = False,
) -> RestoreReport:
    """Restore mail for an actor (provider: anything; owner: their own domains), on the
    hosting server that holds the domain's mail and its backups."""
    found = get_domain(actor, domain)  # the name as typed (case, U-label) to the row's
    home = _home_elsewhere(found)
    if home is not None:
        from courriel.cluster.rpc import actor_fields, call_service

        options = {
            "login": login,
            "folder": folder,
            "message": message,
            "snapshot": snapshot,
            "in_place": in_place,
        }
        body = {"actor": actor_fields(actor), "domain": found.name, "options": options}
        return RestoreReport(**call_service(home, "restore", body))
    return restore_mail(
        actor,
        domain,
        login=login,
        folder=folder,
        message=message,
        snapshot=snapshot,
        in_place=in_place,
    )


def find_dump(actor: Actor, ref: str | None) -> database.Dump:
    require_provider(actor, _("restore the database"))
    return database.find(load_policy().directory, ref)


def restore_database(actor: Actor, dump: database.Dump) -> str:
    """Replace the live database by `dump` (provider only); returns the name of the
    dump of the database as it was just before, so the restore can be undone."""
    from courriel.audit.log import record

    require_provider(actor, _("restore the database"))
    policy = load_policy()
    safety = database.restore(dump, store.ensure_directory(policy), local_now())
    record(actor, "backup.restore_database", dump.name, previous=safety.name)
    return safety.name
