"""Mail aliases (chapter 10). The catch-all (any other address of the domain) is named `*`."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from courriel.accounts.permissions import get_domain
from courriel.accounts.schemas import AliasOut
from courriel.accounts.services import aliases as alias_service
from courriel.api.common import Paging, actor, paged, responses, some_changes
from courriel.api.inputs import AliasIn, AliasPatch
from courriel.api.outputs import DeletedOut, Page

router = Router(tags=["aliases"])


@router.get("/domains/{name}/aliases", response=responses(Page[AliasOut]))
def list_aliases(
    request: HttpRequest, name: str, paging: Query[Paging], search: str = Query("", max_length=64)
) -> dict[str, object]:
    who = actor(request)
    aliases = alias_service.aliases_of(who, get_domain(who, name))
    if search.strip():
        aliases = aliases.filter(addresses__local_part__icontains=search.strip().lower())
    return paged(aliases, paging, AliasOut.of)


@router.post("/domains/{name}/aliases", response=responses(AliasOut, 201))
def create_alias(request: HttpRequest, name: str, body: AliasIn) -> Status[AliasOut]:
    who = actor(request)
    values = body.model_dump()
    alias = alias_service.create_alias(who, get_domain(who, name), values.pop("name"), **values)
    return Status(201, AliasOut.of(alias))


@router.get("/domains/{name}/aliases/{path:alias}", response=responses(AliasOut))
def show_alias(request: HttpRequest, name: str, alias: str) -> AliasOut:
    who = actor(request)
    return AliasOut.of(alias_service.get_alias(who, get_domain(who, name), alias))


@router.patch("/domains/{name}/aliases/{path:alias}", response=responses(AliasOut))
def modify_alias(request: HttpRequest, name: str, alias: str, body: AliasPatch) -> AliasOut:
    who = actor(request)
    found = alias_service.get_alias(who, get_domain(who, name), alias)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return AliasOut.of(alias_service.modify_alias(who, found, **some_changes(changes)))


@router.delete("/domains/{name}/aliases/{path:alias}", response=responses(DeletedOut))
def delete_alias(request: HttpRequest, name: str, alias: str) -> DeletedOut:
    who = actor(request)
    found = alias_service.get_alias(who, get_domain(who, name), alias)
    return DeletedOut(deleted=alias_service.delete_aliases(who, [found]))
