"""One description of each object, used by the CLI's --json, the REST API and the panel
(so that every interface names and shapes things the same way)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel

from courriel.accounts.models import Alias, Domain, DomainAlias, HostingServer, Mailbox, Plan
from courriel.accounts.services.aliases import alias_name
from courriel.accounts.services.limits import Usage
from courriel.accounts.services.mailboxes import additional_emails, primary_address
from courriel.config import get_config
from courriel.mailstore.quota import maildir_usage


class ServerOut(BaseModel):
    name: str
    hostname: str
    ip_address: str | None
    admin_url: str
    accepts_domains: bool
    domains: int | None = None

    @classmethod
    def of(cls, server: HostingServer) -> ServerOut:
        return cls(
            name=server.name,
            hostname=server.hostname,
            ip_address=server.ip_address,
            admin_url=server.effective_admin_url,
            accepts_domains=server.accepts_domains,
            domains=getattr(server, "domain_count", None),
        )


class PlanOut(BaseModel):
    name: str
    label: str
    web_quota: int | None
    mail_quota: int | None
    max_mailboxes: int | None
    max_servers: int | None
    max_domain_aliases: int | None
    default_mailbox_quota: int | None

    @classmethod
    def of(cls, plan: Plan) -> PlanOut:
        return cls.model_validate(plan, from_attributes=True)


class UsageOut(BaseModel):
    mailboxes: int
    max_mailboxes: int | None
    additional_mailboxes: int | None
    servers: int
    max_servers: int | None
    domain_aliases: int
    max_domain_aliases: int | None
    aliases: int
    mail_quota: int | None
    web_quota: int | None
    disk_used: int | None = None

    @classmethod
    def of(cls, usage: Usage, disk_used: int | None = None) -> UsageOut:
        return cls(**usage.as_dict(), disk_used=disk_used)


class VerificationOut(BaseModel):
    """The DNS TXT record that proves control of a pending name."""

    record: str
    value: str

    @classmethod
    def of(cls, found: Domain | DomainAlias) -> VerificationOut | None:
        from courriel.accounts.services.ownership import verification_record

        if not found.pending:
            return None
        record, value = verification_record(found)
        return cls(record=record, value=value)


class DomainOut(BaseModel):
    name: str
    display_name: str
    verified: bool
    verification: VerificationOut | None
    parent: str | None
    plan: str
    server: str
    owner: str | None
    admin_group: str
    home_directory: str
    description: str
    contact_email: str
    ip_address: str | None
    features: list[str]
    require_2fa: bool
    domain_aliases: list[str] | None = None
    created_on: datetime
    created_by: str
    usage: UsageOut | None = None

    @classmethod
    def of(
        cls, domain: Domain, usage: UsageOut | None = None, with_aliases: bool = False
    ) -> DomainOut:
        return cls(
            name=domain.name,
            display_name=domain.display_name,
            verified=not domain.pending,
            verification=VerificationOut.of(domain),
            parent=domain.parent.name if domain.parent_id else None,  # type: ignore[union-attr]
            plan=domain.effective_plan.name,
            server=domain.server.name,
            owner=domain.owner.login if domain.owner_id else None,  # type: ignore[union-attr]
            admin_group=domain.admin_group,
            home_directory=domain.home_directory,
            description=domain.description,
            contact_email=domain.contact_email,
            ip_address=domain.ip_address,
            features=list(domain.features),
            require_2fa=domain.require_2fa,
            domain_aliases=(
                [a.name for a in domain.domain_aliases.all()] if with_aliases else None
            ),
            created_on=domain.created_at,
            created_by=domain.created_by,
            usage=usage,
        )


class AutoreplyOut(BaseModel):
    enabled: bool
    message: str
    interval_seconds: int | None
    start: date | None
    end: date | None


class MailboxOut(BaseModel):
    login: str
    domain: str
    email: str
    primary_enabled: bool
    real_name: str
    password_changed_at: datetime | None
    login_disabled: bool
    quota: int | None
    quota_used: int | None = None
    additional_addresses: list[str]
    deliver_normally: bool
    forward_to: list[str]
    autoreply: AutoreplyOut
    inbox: str
    last_mail_at: datetime | None
    owner: bool

    @classmethod
    def of(cls, mailbox: Mailbox, *, with_usage: bool = False) -> MailboxOut:
        primary = primary_address(mailbox)
        path = mailbox.maildir_path(get_config().mail_root)
        return cls(
            login=mailbox.login,
            domain=mailbox.domain.name,
            email=f"{primary.local_part}@{mailbox.domain.name}" if primary else "",
            primary_enabled=bool(primary and primary.enabled),
            real_name=mailbox.real_name,
            password_changed_at=mailbox.password_changed_at,
            login_disabled=mailbox.login_disabled,
            quota=mailbox.quota,
            quota_used=maildir_usage(path) if with_usage else None,
            additional_addresses=additional_emails(mailbox),
            deliver_normally=mailbox.deliver_normally,
            forward_to=list(mailbox.forward_to),
            autoreply=AutoreplyOut(
                enabled=mailbox.autoreply_enabled,
                message=mailbox.autoreply_message,
                interval_seconds=mailbox.autoreply_interval,
                start=mailbox.autoreply_start,
                end=mailbox.autoreply_end,
            ),
            inbox=str(path),
            last_mail_at=mailbox.last_mail_at,
            owner=mailbox.domain.owner_id == mailbox.pk,
        )


class AliasOut(BaseModel):
    name: str
    email: str
    catch_all: bool
    mailboxes: list[str]
    forward_to: list[str]
    everyone: bool
    bounce: bool
    bounce_message: str
    description: str

    @classmethod
    def of(cls, alias: Alias) -> AliasOut:
        name = alias_name(alias)
        return cls(
            name=name or "*",
            email=f"{name or '*'}@{alias.domain.name}",
            catch_all=name == "",
            mailboxes=[m.login for m in alias.mailboxes.all()],
            forward_to=list(alias.forward_to),
            everyone=alias.everyone,
            bounce=alias.bounce,
            bounce_message=alias.bounce_message,
            description=alias.description,
        )


class DomainAliasOut(BaseModel):
    name: str
    domain: str
    verified: bool
    verification: VerificationOut | None

    @classmethod
    def of(cls, alias: DomainAlias) -> DomainAliasOut:
        return cls(
            name=alias.name,
            domain=alias.domain.name,
            verified=not alias.pending,
            verification=VerificationOut.of(alias),
        )
