"""Hosting servers and plans: the provider's catalogue."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from courriel.accounts.models import Plan
from courriel.accounts.permissions import require_provider
from courriel.accounts.schemas import PlanOut, ServerOut
from courriel.accounts.services import plans as plan_service
from courriel.accounts.services import servers as server_service
from courriel.api.common import actor, responses
from courriel.api.inputs import PlanIn, PlanPatch, ServerIn, ServerPatch
from courriel.api.outputs import DeletedOut
from courriel.i18n import gettext as _

router = Router(tags=["provider"])


@router.get("/servers", response=responses(list[ServerOut]))
def list_servers(request: HttpRequest) -> list[ServerOut]:
    require_provider(actor(request), _("list hosting servers"))
    return [ServerOut.of(s) for s in server_service.list_servers()]


@router.post("/servers", response=responses(ServerOut, 201))
def add_server(request: HttpRequest, body: ServerIn) -> Status[ServerOut]:
    server = server_service.add_server(actor(request), **body.model_dump())
    return Status(201, ServerOut.of(server))


@router.get("/servers/{name}", response=responses(ServerOut))
def show_server(request: HttpRequest, name: str) -> ServerOut:
    require_provider(actor(request), _("see hosting servers"))
    return ServerOut.of(server_service.get_server(name))


@router.patch("/servers/{name}", response=responses(ServerOut))
def modify_server(request: HttpRequest, name: str, body: ServerPatch) -> ServerOut:
    who = actor(request)
    require_provider(who, _("change hosting servers"))
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    server = server_service.modify_server(who, server_service.get_server(name), **changes)
    return ServerOut.of(server)


@router.delete("/servers/{name}", response=responses(DeletedOut))
def delete_server(request: HttpRequest, name: str) -> DeletedOut:
    who = actor(request)
    require_provider(who, _("delete hosting servers"))
    server = server_service.get_server(name)
    server_service.delete_server(who, server)
    return DeletedOut(deleted=[server.name])


@router.get("/plans", response=responses(list[PlanOut]))
def list_plans(request: HttpRequest) -> list[PlanOut]:
    require_provider(actor(request), _("list plans"))
    return [PlanOut.of(p) for p in Plan.objects.order_by("id")]


@router.post("/plans", response=responses(PlanOut, 201))
def create_plan(request: HttpRequest, body: PlanIn) -> Status[PlanOut]:
    values = body.model_dump(exclude_unset=True)
    name = values.pop("name")
    label = values.pop("label", "")
    plan = plan_service.create_plan(actor(request), name, label=label, **values)
    return Status(201, PlanOut.of(plan))


@router.get("/plans/{name}", response=responses(PlanOut))
def show_plan(request: HttpRequest, name: str) -> PlanOut:
    require_provider(actor(request), _("see plans"))
    return PlanOut.of(plan_service.get_plan(name))


@router.patch("/plans/{name}", response=responses(PlanOut))
def modify_plan(request: HttpRequest, name: str, body: PlanPatch) -> PlanOut:
    who = actor(request)
    require_provider(who, _("change plans"))
    values = body.model_dump(exclude_unset=True)
    label = values.pop("label", None)
    plan = plan_service.modify_plan(who, plan_service.get_plan(name), label=label, **values)
    return PlanOut.of(plan)


@router.delete("/plans/{name}", response=responses(DeletedOut))
def delete_plan(request: HttpRequest, name: str) -> DeletedOut:
    who = actor(request)
    require_provider(who, _("delete plans"))
    plan = plan_service.get_plan(name)
    plan_service.delete_plan(who, plan)
    return DeletedOut(deleted=[plan.name])
