"""The caller: who they are, and self-service on their own mailbox; the audit log;
their API tokens."""

from __future__ import annotations

from typing import Literal

from django.db.models import Q
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router

from courriel.accounts.models import Mailbox
from courriel.accounts.permissions import Actor, visible_domains, visible_mailboxes
from courriel.accounts.schemas import MailboxOut
from courriel.accounts.services import mailboxes as mailbox_service
from courriel.api import tokens as token_service
from courriel.api.common import (
    DOWNLOAD_DOC,
    DOWNLOAD_FORMAT,
    ERRORS,
    Paging,
    actor,
    api_proof,
    paged,
    responses,
    some_changes,
)
from courriel.api.inputs import SelfServicePatch
from courriel.api.models import ApiToken
from courriel.api.outputs import AuditOut, DeletedOut, MeOut, Page, TokenOut
from courriel.audit.log import entries_for
from courriel.audit.models import AuditEntry
from courriel.backup.download import open_download
from courriel.errors import NotFoundError
from courriel.i18n import gettext as _
from courriel.web.streaming import attachment

router = Router(tags=["me"])


def _own(request: HttpRequest) -> tuple[Actor, Mailbox | None]:
    who = actor(request)
    mailbox = visible_mailboxes(who).filter(pk=who.mailbox_id).first() if who.mailbox_id else None
    return who, mailbox


def _own_mailbox(request: HttpRequest) -> tuple[Actor, Mailbox]:
    who, mailbox = _own(request)
    if mailbox is None:
        raise NotFoundError(_("This token belongs to a provider admin, who has no mailbox."))
    return who, mailbox


@router.get("/me", response=responses(MeOut))
def me(request: HttpRequest) -> MeOut:
    who, mailbox = _own(request)
    return MeOut(
        role=who.role,
        name=who.name,
        mailbox=MailboxOut.of(mailbox, with_usage=True) if mailbox else None,
    )


@router.patch("/me", response=responses(MeOut))
def change_me(request: HttpRequest, body: SelfServicePatch) -> MeOut:
    """Self-service: password, forwarding, automatic reply, language. A new password
    needs `current_password`; it ends the panel sessions and revokes every API token
    of the mailbox, this one included (the answer says how many)."""
    who, mailbox = _own_mailbox(request)
    changes = some_changes(body.changes())
    proof = api_proof(request, body.current_password)
    updated = mailbox_service.modify_mailbox(who, mailbox, proof=proof, **changes)
    changed = bool(changes.get("password"))
    return MeOut(
        role=who.role,
        name=who.name,
        mailbox=MailboxOut.of(updated),
        tokens_revoked=updated.tokens_revoked if changed else None,
        other_sessions_ended=True if changed else None,
    )


@router.get("/me/download", response=ERRORS, openapi_extra=DOWNLOAD_DOC)
def download_own_mailbox(
    request: HttpRequest, format: Literal["mbox", "maildir"] = DOWNLOAD_FORMAT
) -> StreamingHttpResponse:
    """One's own mailbox as an mbox file or a Maildir archive, streamed."""
    who, mailbox = _own_mailbox(request)
    return attachment(request, open_download(who, mailbox.login, format))


def _audit(entry: AuditEntry) -> AuditOut:
    return AuditOut.model_validate(entry, from_attributes=True)


@router.get("/audit", response=responses(Page[AuditOut]))
def audit(
    request: HttpRequest, paging: Query[Paging], domain: str = Query("", max_length=253)
) -> dict[str, object]:
    """Who changed what: everything for the provider, one's own domains for an owner."""
    who = actor(request)
    if who.is_provider:
        entries = entries_for(who)
    else:
        names = list(visible_domains(who).values_list("name", flat=True))
        entries = entries_for(who, names)
    if domain.strip():
        entries = entries.filter(Q(domain=domain.strip().lower()))
    return paged(entries, paging, _audit)


def _token(token: ApiToken) -> TokenOut:
    return TokenOut(
        id=token.pk,
        name=token.name,
        prefix=token.prefix,
        holder=token.holder,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
    )


@router.get("/tokens", response=responses(Page[TokenOut]))
def list_tokens(request: HttpRequest, paging: Query[Paging]) -> dict[str, object]:
    """The caller's API tokens (the provider's: everyone's)."""
    who = actor(request)
    return paged(token_service.tokens_of(who, everyone=who.is_provider), paging, _token)


@router.delete("/tokens/{token_id}", response=responses(DeletedOut))
def revoke_token(request: HttpRequest, token_id: int) -> DeletedOut:
    token = token_service.revoke_token(actor(request), token_id)
    return DeletedOut(deleted=[f"{token.prefix}… {token.name}"])
