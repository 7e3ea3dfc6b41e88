"""Mailboxes (chapters 6 to 9 and 11), batch creation, passwords."""

from __future__ import annotations

from typing import Literal

from django.db.models import Q
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Status

from courriel.accounts.importer import import_mailboxes
from courriel.accounts.permissions import get_domain, get_mailbox
from courriel.accounts.schemas import MailboxOut
from courriel.accounts.services import mailboxes as mailbox_service
from courriel.accounts.services.limits import usage
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
from courriel.api.inputs import AccountMailIn, ImportIn, MailboxIn, MailboxPatch, PasswordIn
from courriel.api.outputs import (
    AccountMailOut,
    DeletedOut,
    ImportLineOut,
    MailboxCreatedOut,
    Page,
    PasswordOut,
)
from courriel.backup.download import open_download
from courriel.errors import ValidationError
from courriel.i18n import gettext as _
from courriel.web.streaming import attachment

router = Router(tags=["mailboxes"])


@router.get("/domains/{name}/mailboxes", response=responses(Page[MailboxOut]))
def list_mailboxes(
    request: HttpRequest,
    name: str,
    paging: Query[Paging],
    search: str = Query("", max_length=100),
    with_usage: bool = Query(False, description="Also read each mailbox's disk usage."),
) -> dict[str, object]:
    who = actor(request)
    mailboxes = mailbox_service.mailboxes_of(who, get_domain(who, name))
    if search.strip():
        term = search.strip()
        mailboxes = mailboxes.filter(Q(login__icontains=term) | Q(real_name__icontains=term))
    return paged(mailboxes, paging, lambda m: MailboxOut.of(m, with_usage=with_usage))


@router.post("/domains/{name}/mailboxes", response=responses(MailboxCreatedOut, 201))
def create_mailbox(request: HttpRequest, name: str, body: MailboxIn) -> Status[MailboxCreatedOut]:
    """Add a user to this server; without `login`, the naming convention's next one."""
    who = actor(request)
    domain = get_domain(who, name)
    values = body.model_dump(exclude_unset=True)
    unlimited = values.pop("unlimited_quota", False)
    if unlimited:
        values["quota"] = None
    elif values.get("quota") is None:
        values.pop("quota", None)  # the plan's default
    created = mailbox_service.create_mailbox(who, domain, **values)
    return Status(
        201,
        MailboxCreatedOut(
            mailbox=MailboxOut.of(created.mailbox),
            password=created.password,
            additional_mailboxes=usage(domain).additional_mailboxes,
            account_mail_sent_to=created.account_mail_to,
        ),
    )


@router.post("/domains/{name}/mailboxes/import", response=responses(list[ImportLineOut]))
def batch_create(request: HttpRequest, name: str, body: ImportIn) -> list[ImportLineOut]:
    """Batch create users: CSV with a header, or Virtualmin's format; a report per line."""
    who = actor(request)
    reports = import_mailboxes(who, get_domain(who, name), body.text)
    return [ImportLineOut(**vars(report)) for report in reports]


@router.get("/domains/{name}/mailboxes/{login}", response=responses(MailboxOut))
def show_mailbox(request: HttpRequest, name: str, login: str) -> MailboxOut:
    who = actor(request)
    return MailboxOut.of(get_mailbox(who, login, get_domain(who, name)), with_usage=True)


@router.patch("/domains/{name}/mailboxes/{login}", response=responses(MailboxOut))
def modify_mailbox(request: HttpRequest, name: str, login: str, body: MailboxPatch) -> MailboxOut:
    who = actor(request)
    mailbox = get_mailbox(who, login, get_domain(who, name))
    changes = some_changes(body.changes())
    proof = api_proof(request, body.current_password)
    return MailboxOut.of(mailbox_service.modify_mailbox(who, mailbox, proof=proof, **changes))


@router.delete("/domains/{name}/mailboxes/{login}", response=responses(DeletedOut))
def delete_mailbox(request: HttpRequest, name: str, login: str) -> DeletedOut:
    who = actor(request)
    mailbox = get_mailbox(who, login, get_domain(who, name))
    return DeletedOut(deleted=mailbox_service.delete_mailboxes(who, [mailbox]))


@router.post("/domains/{name}/mailboxes/{login}/password", response=responses(PasswordOut))
def change_password(request: HttpRequest, name: str, login: str, body: PasswordIn) -> PasswordOut:
    """Set a password, or generate one and get it in the answer (shown this once). The
    mailbox's panel sessions end and its API tokens are revoked (`tokens_revoked`). One's
    own password needs `current_password`."""
    who = actor(request)
    mailbox = get_mailbox(who, login, get_domain(who, name))
    if body.generate == bool(body.password):
        raise ValidationError(_("Send either a password or generate: true."), field="password")
    changed = mailbox_service.change_password(
        who,
        mailbox,
        None if body.generate else body.password,
        proof=api_proof(request, body.current_password),
    )
    return PasswordOut(
        password=changed.password,
        tokens_revoked=changed.tokens_revoked,
        other_sessions_ended=True,
    )


@router.post("/domains/{name}/mailboxes/{login}/account-mail", response=responses(AccountMailOut))
def send_account_mail(
    request: HttpRequest, name: str, login: str, body: AccountMailIn
) -> AccountMailOut:
    """Edit Mailbox's "Send updated account email to": the mailbox's settings, never its
    password."""
    who = actor(request)
    mailbox = get_mailbox(who, login, get_domain(who, name))
    return AccountMailOut(sent_to=mailbox_service.send_account_mail(who, mailbox, body.to))


@router.get(
    "/domains/{name}/mailboxes/{login}/download", response=ERRORS, openapi_extra=DOWNLOAD_DOC
)
def download_mailbox(
    request: HttpRequest,
    name: str,
    login: str,
    format: Literal["mbox", "maildir"] = DOWNLOAD_FORMAT,
) -> StreamingHttpResponse:
    """The whole mailbox as an mbox file or a Maildir archive, streamed."""
    who = actor(request)
    domain = get_domain(who, name)
    return attachment(request, open_download(who, login, format, domain=domain.name))
