"""Moving a domain to another hosting server (issue 15), with its progress: the same
services as `courriel domain move` (courriel.cluster.moves); the target server does
the work, so a request returns at once and the move is followed with GET."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema, Status

from courriel.api.common import actor, responses
from courriel.cluster.models import DomainMove

router = Router(tags=["provider"])


class MoveIn(Schema):
    to: str


class MoveOut(Schema):
    id: int
    domain: str
    source: str
    target: str
    state: str
    cancel_requested: bool
    percent: int
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
    def of(cls, move: DomainMove) -> MoveOut:
        from dataclasses import asdict

        from courriel.cluster.moves import MoveView

        view = MoveView.of(move)
        return cls(**asdict(view), percent=view.percent)


@router.post("/domains/{name}/move", response=responses(MoveOut, 202))
def start_move(request: HttpRequest, name: str, body: MoveIn) -> Status[MoveOut]:
    from courriel.cluster.moves import start_move

    return Status(202, MoveOut.of(start_move(actor(request), name, body.to)))


@router.delete("/domains/{name}/move", response=responses(MoveOut))
def cancel_move(request: HttpRequest, name: str) -> MoveOut:
    from courriel.cluster.moves import cancel_move

    return MoveOut.of(cancel_move(actor(request), name))


@router.get("/moves", response=responses(list[MoveOut]))
def list_moves(request: HttpRequest, domain: str | None = None) -> list[MoveOut]:
    from courriel.cluster.moves import list_moves

    return [MoveOut.of(m) for m in list_moves(actor(request), domain)]


@router.get("/moves/{move_id}", response=responses(MoveOut))
def show_move(request: HttpRequest, move_id: int) -> MoveOut:
    from courriel.accounts.permissions import require_provider
    from courriel.cluster.moves import get_move
    from courriel.i18n import gettext as _

    require_provider(actor(request), _("see domain moves"))
    return MoveOut.of(get_move(move_id))
