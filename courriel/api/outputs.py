"""API answers that wrap the shared shapes of `courriel.accounts.schemas` the way the
CLI's --json does (`{"mailbox": ..., "password": ...}`), plus paging and errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from courriel.accounts.schemas import DomainOut, MailboxOut

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    count: int  # of the whole list
    limit: int
    offset: int


class ErrorOut(BaseModel):
    detail: Any
    field: str | None = None


class DomainCreatedOut(BaseModel):
    domain: DomainOut
    owner: str | None
    password: str | None  # the generated owner password, shown once
    setup: dict[str, str]  # the "mail domain has been set up" facts
    setup_mail_sent_to: str | None  # the contact address they were mailed to, if any


class MailboxCreatedOut(BaseModel):
    mailbox: MailboxOut
    password: str | None  # generated, shown once
    additional_mailboxes: int | None
    account_mail_sent_to: str | None  # where the account e-mail went, if anywhere


class DnsRecordOut(BaseModel):
    name: str
    type: str
    value: str
    purpose: str
    zone_line: str  # the record as a BIND zone file line


class AccountMailOut(BaseModel):
    sent_to: str


class PasswordOut(BaseModel):
    password: str | None  # the generated password, shown once; null when one was given
    tokens_revoked: int = 0  # the mailbox's API tokens, revoked by the change
    other_sessions_ended: bool = True  # its panel sessions end too


class DeletedOut(BaseModel):
    deleted: list[str]


class ImportLineOut(BaseModel):
    line: int
    login: str
    ok: bool
    message: str
    password: str | None


class MeOut(BaseModel):
    role: str
    name: str
    mailbox: MailboxOut | None
    # After a password change: the API tokens revoked (this one too) and the panel
    # sessions ended. Null when the password did not change.
    tokens_revoked: int | None = None
    other_sessions_ended: bool | None = None


class AuditOut(BaseModel):
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    domain: str
    details: dict[str, Any]


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    holder: str
    created_at: datetime
    last_used_at: datetime | None
