"""Greylisting (chapter 13): the provider's status, whitelists and purge; the lookup
that answers "why was my mail delayed, and when will it arrive?" (the provider: any
mail; an owner: mail to their domains; a mailbox user: mail to their addresses); the
per-domain and per-mailbox switches. The services are `courriel.greylist.services`,
the same as the panel's and `courriel greylist`."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest
from ninja import Query, Router, Status

from courriel.api.common import Paging, actor, paged, responses
from courriel.api.inputs import (
    DomainGreylistingPatch,
    MailboxGreylistingPatch,
    WhitelistImportIn,
    WhitelistIn,
)
from courriel.api.outputs import DeletedOut, Page
from courriel.greylist import services as greylist
from courriel.greylist.schemas import (
    DomainGreylistingOut,
    ImportOut,
    LookupOut,
    MailboxGreylistingOut,
    PurgeOut,
    StatusOut,
    WhitelistEntryOut,
)

router = Router(tags=["greylisting"])

Kind = Literal["client", "sender", "recipient"]


@router.get("/greylist/status", response=responses(StatusOut))
def status(request: HttpRequest) -> StatusOut:
    """Counts (today, the last 7 days, in total) and the settings in effect."""
    return greylist.status(actor(request))


@router.get("/greylist/lookup", response=responses(LookupOut))
def lookup(
    request: HttpRequest,
    sender: str | None = Query(None, max_length=320),
    recipient: str | None = Query(
        None, max_length=320, description="An address, or a domain for all its addresses."
    ),
    client_ip: str | None = Query(None, max_length=45),
    limit: int = Query(50, ge=1, le=500),
) -> LookupOut:
    """Why was mail delayed, and when will it arrive? Give at least one of sender,
    recipient and client_ip; only mail the caller may see is searched."""
    return greylist.lookup(
        actor(request), sender=sender, recipient=recipient, client_ip=client_ip, limit=limit
    )


@router.post("/greylist/purge", response=responses(PurgeOut))
def purge(request: HttpRequest) -> PurgeOut:
    """Forget expired triplets and networks now (also done on a schedule)."""
    return greylist.purge(actor(request))


@router.get("/greylist/whitelist", response=responses(Page[WhitelistEntryOut]))
def list_whitelist(
    request: HttpRequest,
    paging: Query[Paging],
    kind: Kind | None = None,
    include_default: bool = Query(True, description="Also the shipped default list."),
) -> dict[str, object]:
    entries = greylist.list_whitelist(actor(request), kind=kind, include_default=include_default)
    return paged(entries, paging, lambda entry: entry)


@router.post("/greylist/whitelist", response=responses(WhitelistEntryOut, 201))
def add_whitelist(request: HttpRequest, body: WhitelistIn) -> Status[WhitelistEntryOut]:
    entry = greylist.add_whitelist(actor(request), body.kind, body.value, body.comment)
    return Status(201, entry)


@router.delete("/greylist/whitelist/{kind}/{path:value}", response=responses(DeletedOut))
def remove_whitelist(request: HttpRequest, kind: Kind, value: str) -> DeletedOut:
    """Remove one of the provider's entries (`192.0.2.0/24` as it is, slash included)."""
    greylist.remove_whitelist(actor(request), kind, value)
    return DeletedOut(deleted=[value])


@router.post("/greylist/whitelist/import", response=responses(ImportOut))
def import_whitelist(request: HttpRequest, body: WhitelistImportIn) -> ImportOut:
    return greylist.import_whitelist(actor(request), body.kind, body.text, body.source)


@router.get("/domains/{name}/greylisting", response=responses(DomainGreylistingOut))
def domain_greylisting(request: HttpRequest, name: str) -> DomainGreylistingOut:
    return greylist.domain_greylisting(actor(request), name)


@router.patch("/domains/{name}/greylisting", response=responses(DomainGreylistingOut))
def set_domain_greylisting(
    request: HttpRequest, name: str, body: DomainGreylistingPatch
) -> DomainGreylistingOut:
    """Turn greylisting on or off for the domain; the provider may also set its delay."""
    return greylist.set_domain_greylisting(
        actor(request), name, **body.model_dump(exclude_unset=True)
    )


@router.get(
    "/domains/{name}/mailboxes/{login}/greylisting", response=responses(MailboxGreylistingOut)
)
def mailbox_greylisting(request: HttpRequest, name: str, login: str) -> MailboxGreylistingOut:
    return greylist.mailbox_greylisting(actor(request), name, login)


@router.patch(
    "/domains/{name}/mailboxes/{login}/greylisting", response=responses(MailboxGreylistingOut)
)
def set_mailbox_greylisting(
    request: HttpRequest, name: str, login: str, body: MailboxGreylistingPatch
) -> MailboxGreylistingOut:
    return greylist.set_mailbox_greylisting(actor(request), name, login, enabled=body.enabled)
