"""What API clients send. Outputs are `courriel.accounts.schemas` (the CLI's --json
shapes); inputs use the services' own argument names, so the API, the CLI and the
panel describe one thing one way. Bounds here only keep values storable (no NUL
characters, numbers that fit the database); the rules are the services'."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Size = Annotated[int, Field(ge=0, le=2**62)]
Count = Annotated[int, Field(ge=0, le=2**31 - 1)]
Seconds = Annotated[int, Field(ge=0, le=2**31 - 1)]
Text = Annotated[str, Field(max_length=70_000)]  # the services cap auto-replies at 64 KiB
Name = Annotated[str, Field(max_length=320)]
# The column sizes of the account model, so that a too-long value is a 422, not a
# database error.
DomainName = Annotated[str, Field(max_length=253)]
Login = Annotated[str, Field(max_length=64)]
Email = Annotated[str, Field(max_length=254)]
IP = Annotated[str, Field(max_length=45)]
PlanName = Annotated[str, Field(max_length=50)]
Label = Annotated[str, Field(max_length=100)]
Url = Annotated[str, Field(max_length=300)]
# Lists are bounded here only to keep bodies sane; the services' caps (100 additional
# addresses, 100 destinations of an alias...) answer with their own clear message.
MANY = 1000


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text may not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode") from None
    elif isinstance(value, list):
        for item in value:
            _storable(item)
    return value


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _check_text(cls, value: Any) -> Any:
        return _storable(value)


class ServerIn(In):
    name: Label
    hostname: DomainName
    ip_address: IP | None = None
    admin_url: Url = ""
    accepts_domains: bool = True


class ServerPatch(In):
    hostname: DomainName | None = None
    ip_address: IP | None = None
    admin_url: Url | None = None
    accepts_domains: bool | None = None


class PlanLimits(In):
    """A plan's limits in bytes and counts; null means unlimited."""

    web_quota: Size | None = None
    mail_quota: Size | None = None
    max_mailboxes: Count | None = None
    max_servers: Count | None = None
    max_domain_aliases: Count | None = None
    default_mailbox_quota: Size | None = None


class PlanIn(PlanLimits):
    name: PlanName
    label: Label = ""


class PlanPatch(PlanLimits):
    """Absent keys stay as they are; null means unlimited."""

    label: Label | None = None


class DomainIn(In):
    """A customer's domain (the provider: plan, server) or a sub-server (parent)."""

    name: DomainName
    plan: PlanName | None = None
    server: Label | None = None
    parent: DomainName | None = None
    owner_login: Login | None = None
    password: Name | None = None
    real_name: Name = ""
    description: Name = ""
    contact_email: Email = ""
    features: list[Name] | None = Field(default=None, max_length=20)
    ip_address: IP | None = None


class DomainPatch(In):
    plan: PlanName | None = None
    server: Label | None = None
    ip_address: IP | None = None
    description: Name | None = None
    contact_email: Email | None = None
    features: list[Name] | None = Field(default=None, max_length=20)
    admin_group: Name | None = None
    require_2fa: bool | None = Field(
        default=None, description="Provider only: the owner must use two-factor sign-in."
    )


class DomainAliasIn(In):
    name: DomainName


class MailboxIn(In):
    login: Login | None = None
    real_name: Name = ""
    password: Name | None = None
    generate_password: bool = False
    quota: Size | None = Field(default=None, description="Bytes; null: the plan's default.")
    unlimited_quota: bool = False
    addresses: list[Name] = Field(default_factory=list, max_length=MANY)
    primary_local_part: Login | None = None
    primary_enabled: bool = True
    disabled: bool = False
    deliver_normally: bool = True
    forward_to: list[Name] = Field(default_factory=list, max_length=MANY)
    send_account_mail_to: Email | None = Field(
        default=None,
        description='"Send new account email to": "mailbox" (the new mailbox) or an address; '
        "null: don't send.",
    )


class SelfServicePatch(In):
    """What mailbox users may change about their own mailbox; absent keys stay as they
    are."""

    real_name: Name | None = None
    password: Name | None = None
    deliver_normally: bool | None = None
    forward_to: list[Name] | None = Field(default=None, max_length=MANY)
    autoreply_enabled: bool | None = None
    autoreply_message: Text | None = None
    autoreply_interval: Seconds | None = None
    autoreply_start: date | None = None
    autoreply_end: date | None = None
    language: Name | None = None
    current_password: Name | None = Field(
        default=None, description="Needed to change one's own password."
    )

    # Keys for which null is a value (unlimited, no minimum, any time), not "unchanged".
    NULLABLE: ClassVar[frozenset[str]] = frozenset(
        {"quota", "autoreply_interval", "autoreply_start", "autoreply_end"}
    )

    def changes(self) -> dict[str, Any]:
        """The keys the client sent; null only where it means something."""
        return {
            key: value
            for key, value in self.model_dump(exclude_unset=True).items()
            if (value is not None or key in self.NULLABLE) and key != "current_password"
        }


class MailboxPatch(SelfServicePatch):
    """Any of these at once (the owner's and provider's); `quota: null` is unlimited."""

    login: Login | None = None
    primary_local_part: Login | None = None
    login_disabled: bool | None = None
    quota: Size | None = None
    primary_enabled: bool | None = None
    addresses: list[Name] | None = Field(default=None, max_length=MANY)


class AccountMailIn(In):
    to: Email = Field(description='"mailbox" (the mailbox\'s own address) or an address.')


class PasswordIn(In):
    password: Name | None = None
    generate: bool = False
    current_password: Name | None = Field(
        default=None, description="Needed to change one's own password."
    )


class ImportIn(In):
    text: Annotated[str, Field(max_length=2 * 1024 * 1024)]


class AliasIn(In):
    name: Name = Field(description="The local part, or * for the catch-all (All mailboxes).")
    mailboxes: list[Name] = Field(default_factory=list, max_length=MANY)
    forward_to: list[Name] = Field(default_factory=list, max_length=MANY)
    everyone: bool = False
    bounce: bool = False
    bounce_message: Name = ""
    description: Name = ""


class AliasPatch(In):
    name: Name | None = None
    mailboxes: list[Name] | None = Field(default=None, max_length=MANY)
    forward_to: list[Name] | None = Field(default=None, max_length=MANY)
    everyone: bool | None = None
    bounce: bool | None = None
    bounce_message: Name | None = None
    description: Name | None = None


class WhitelistIn(In):
    kind: Literal["client", "sender", "recipient"]
    value: Url = Field(description="192.0.2.0/24, mail.example.org, example.org, user@, /regex/…")
    comment: Url = ""


class WhitelistImportIn(In):
    """A postgrey `whitelist_clients` (kind client) or `whitelist_recipients` (kind
    recipient) file's text; nothing is imported when one line is invalid."""

    kind: Literal["client", "sender", "recipient"]
    text: Annotated[str, Field(max_length=2 * 1024 * 1024)]
    source: Label = Field("api", description="Where the entries come from (kept with them).")


class DomainGreylistingPatch(In):
    enabled: bool | None = None
    delay: Annotated[str, Field(max_length=20)] | Seconds | None = Field(
        None,
        description="Provider only: this domain's delay (5m, or seconds); null for the "
        "server's delay. Absent: unchanged.",
    )


class MailboxGreylistingPatch(In):
    enabled: bool
