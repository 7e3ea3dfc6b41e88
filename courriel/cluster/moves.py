"""Moving a customer's domain to another hosting server: the rules and the record.

`start_move` checks and records the request; the target node's `courriel serve`
(courriel.cluster.mover) does the work and writes its progress into the record, so
the CLI, the panel and the API all show the same thing and a move survives a crash
of any process. A domain moves with its sub-servers (they share its plan, its
quota and its owner), and only through here: changing `Domain.server` by hand
would leave the mail behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from courriel.accounts.models import Domain, HostingServer, Mailbox
from courriel.accounts.permissions import Actor, get_domain, require_provider
from courriel.accounts.services.servers import get_server
from courriel.audit.log import record
from courriel.cluster.identity import ALIVE, uses_postgresql
from courriel.cluster.models import DomainMove, Node
from courriel.errors import ConflictError, NotFoundError, ValidationError
from courriel.i18n import gettext as _


def family_domains(domain: Domain) -> list[Domain]:
    top = domain.top
    return [top, *Domain.objects.filter(parent=top).order_by("name")]


def family_directories(domain: Domain) -> list[str]:
    """The top-level directories of the mail root that hold the family's mail: one
    per domain, plus any other a mailbox's Maildir was placed under."""
    top = domain.top
    names = {d.name for d in family_domains(top)}
    for maildir in Mailbox.objects.filter(Q(domain=top) | Q(domain__parent=top)).values_list(
        "maildir", flat=True
    ):
        first = maildir.split("/", 1)[0]
        if first and not first.startswith("."):
            names.add(first)
    return sorted(names)


def node_running(server: HostingServer) -> bool:
    node = Node.objects.filter(server=server).first()
    return (
        node is not None
        and node.heartbeat_at is not None
        and node.stopped_at is None
        and timezone.now() - node.heartbeat_at < ALIVE
    )


def check_server_change(domain: Domain, new_server: HostingServer) -> None:
    """`domain modify --server` only changes the record: refused between running nodes,
    where the mail would stay behind."""
    if new_server.pk == domain.server_id:
        return
    if Node.objects.filter(server_id__in=[domain.server_id, new_server.pk]).exists():
        raise ConflictError(
            _(
                "%(domain)s's mail is on hosting server %(server)s: move it with "
                "`courriel domain move %(domain)s --to %(target)s` (its mail goes with it)."
            )
            % {"domain": domain.name, "server": domain.server.name, "target": new_server.name}
        )


@transaction.atomic
def start_move(actor: Actor, domain_name: str, target_name: str) -> DomainMove:
    require_provider(actor, _("move domains between hosting servers"))
    domain = get_domain(actor, domain_name)
    if domain.is_subserver:
        raise ValidationError(
            _("%(domain)s is a sub-server of %(top)s: move %(top)s, its sub-servers go with it.")
            % {"domain": domain.display_name, "top": domain.top.display_name}
        )
    target = get_server(target_name)
    if not uses_postgresql():
        raise ValidationError(
            _(
                "Moving a domain needs several hosting servers sharing a PostgreSQL database "
                "(README: 'Several hosting servers'); this platform runs on SQLite."
            )
        )
    Domain.objects.select_for_update().filter(pk=domain.pk).first()
    existing = DomainMove.objects.filter(domain=domain, state__in=DomainMove.ACTIVE).first()
    if existing is not None:
        if existing.target_id == target.pk:
            return existing  # the same request again: watch the one under way
        raise ConflictError(
            _("%(domain)s is already being moved to %(target)s.")
            % {"domain": domain.display_name, "target": existing.target.name}
        )
    if domain.server_id == target.pk:
        raise ValidationError(
            _("%(domain)s is already on %(target)s.")
            % {"domain": domain.display_name, "target": target.name}
        )
    for server, role in ((domain.server, _("its hosting server")), (target, _("the target"))):
        if not Node.objects.filter(server=server).exists():
            raise ValidationError(
                _(
                    "%(server)s (%(role)s) is not running as a node of this platform: start "
                    '`courriel serve` there with [general] server = "%(server)s" first.'
                )
                % {"server": server.name, "role": role}
            )
    try:
        with transaction.atomic():
            move = DomainMove.objects.create(
                domain=domain, source=domain.server, target=target, requested_by=actor.name
            )
    except IntegrityError:
        raise ConflictError(
            _("%(domain)s is already being moved.") % {"domain": domain.display_name}
        ) from None
    record(
        actor,
        "domain.move",
        domain.name,
        domain=domain.name,
        source=domain.server.name,
        destination=target.name,
    )
    return move


@transaction.atomic
def cancel_move(actor: Actor, domain_name: str) -> DomainMove:
    """Cancel before the switch; afterwards the move finishes (it is short by then)."""
    require_provider(actor, _("move domains between hosting servers"))
    domain = get_domain(actor, domain_name)
    move = (
        DomainMove.objects.select_for_update()
        .filter(domain=domain, state__in=DomainMove.ACTIVE)
        .first()
    )
    if move is None:
        raise NotFoundError(_("%(domain)s is not being moved.") % {"domain": domain.display_name})
    if move.state != DomainMove.COPYING:
        raise ConflictError(
            _(
                "Too late to cancel: the switch of %(domain)s to %(target)s has begun, and the "
                "move will finish in a moment."
            )
            % {"domain": domain.display_name, "target": move.target.name}
        )
    move.cancel_requested = True
    move.save(update_fields=["cancel_requested", "updated_at"])
    record(
        actor, "domain.move.cancel", domain.name, domain=domain.name, destination=move.target.name
    )
    return move


def list_moves(actor: Actor, domain_name: str | None = None) -> list[DomainMove]:
    require_provider(actor, _("see domain moves"))
    moves = DomainMove.objects.select_related("domain", "source", "target")
    if domain_name:
        moves = moves.filter(domain=get_domain(actor, domain_name))
    return list(moves[:200])


def get_move(move_id: int) -> DomainMove:
    move = (
        DomainMove.objects.select_related("domain", "source", "target").filter(pk=move_id).first()
    )
    if move is None:
        raise NotFoundError(_("No such move."))
    return move


@dataclass
class MoveView:
    """A move as every interface shows it."""

    id: int
    domain: str
    source: str
    target: str
    state: str
    cancel_requested: bool
    passes: int
    files_total: int
    files_done: int
    bytes_total: int
    bytes_done: int
    late_messages: int
    detail: str
    requested_by: str
    created_at: datetime
    switched_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, move: DomainMove) -> MoveView:
        return cls(
            id=move.pk,
            domain=move.domain.display_name,
            source=move.source.name,
            target=move.target.name,
            state=move.state,
            cancel_requested=move.cancel_requested,
            passes=move.passes,
            files_total=move.files_total,
            files_done=move.files_done,
            bytes_total=move.bytes_total,
            bytes_done=move.bytes_done,
            late_messages=move.late_messages,
            detail=move.detail,
            requested_by=move.requested_by,
            created_at=move.created_at,
            switched_at=move.switched_at,
            finished_at=move.finished_at,
        )

    @property
    def percent(self) -> int:
        if self.state == DomainMove.DONE:
            return 100
        if not self.bytes_total:
            return 0
        return min(99, int(self.bytes_done * 100 / self.bytes_total))

    def progress_line(self) -> str:
        from courriel.units import format_size

        text = _(
            "%(domain)s -> %(target)s: %(state)s, %(percent)s%% (%(files)s/%(total)s files, "
            "%(done)s of %(size)s)"
        ) % {
            "domain": self.domain,
            "target": self.target,
            "state": self.state,
            "percent": self.percent,
            "files": f"{self.files_done:,}",
            "total": f"{self.files_total:,}",
            "done": format_size(self.bytes_done),
            "size": format_size(self.bytes_total),
        }
        if self.late_messages:
            text += _(", %(count)s late messages handed on") % {"count": self.late_messages}
        if self.detail:
            text += f" - {self.detail}"
        return text
