"""Virtual servers, sub-servers and domain aliases (chapters 1, 3 and 5)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from courriel.accounts.models import DomainAlias
from courriel.accounts.permissions import get_domain, visible_domains
from courriel.accounts.schemas import DomainAliasOut, DomainOut, UsageOut
from courriel.accounts.services import domains as domain_service
from courriel.accounts.services import ownership
from courriel.accounts.services.dns import dns_records
from courriel.accounts.services.limits import usage
from courriel.accounts.setup_summary import setup_facts
from courriel.api.common import Paging, actor, paged, responses
from courriel.api.inputs import DomainAliasIn, DomainIn, DomainPatch
from courriel.api.outputs import DeletedOut, DnsRecordOut, DomainCreatedOut, Page
from courriel.errors import NotFoundError
from courriel.i18n import gettext as _
from courriel.web.usage import recent_disk_usage

router = Router(tags=["domains"])


@router.get("/domains", response=responses(Page[DomainOut]))
def list_domains(
    request: HttpRequest, paging: Query[Paging], search: str = Query("", max_length=253)
) -> dict[str, object]:
    """The virtual servers the caller may see: all of them for the provider, a
    customer's own domain and sub-servers for its owner."""
    domains = visible_domains(actor(request)).select_related("parent__plan").order_by("name")
    if search.strip():
        domains = domains.filter(name__icontains=search.strip().lower())
    return paged(domains, paging, DomainOut.of)


@router.post("/domains", response=responses(DomainCreatedOut, 201))
def create_domain(request: HttpRequest, body: DomainIn) -> Status[DomainCreatedOut]:
    """A customer's domain on a plan and a hosting server (provider), or a sub-server
    of one's own domain (`parent`). The owner's password is in the answer, once."""
    who = actor(request)
    values = body.model_dump()
    parent = values.pop("parent")
    created = domain_service.create_domain(
        who,
        values.pop("name"),
        parent=get_domain(who, parent) if parent else None,
        **values,
    )
    return Status(
        201,
        DomainCreatedOut(
            domain=DomainOut.of(created.domain),
            owner=created.owner.login if created.owner else None,
            password=created.password,
            setup=dict(setup_facts(created.domain, created.password)),
            setup_mail_sent_to=created.setup_mail_to,
        ),
    )


@router.get("/domains/{name}", response=responses(DomainOut))
def show_domain(request: HttpRequest, name: str) -> DomainOut:
    """Details (chapter 5) with usage and limits (chapter 3). `usage.disk_used` is at
    most a minute old, and null while a big customer's first count runs."""
    domain = get_domain(actor(request), name)
    used = UsageOut.of(usage(domain), recent_disk_usage(domain))
    return DomainOut.of(domain, used, with_aliases=True)


@router.patch("/domains/{name}", response=responses(DomainOut))
def modify_domain(request: HttpRequest, name: str, body: DomainPatch) -> DomainOut:
    who = actor(request)
    domain = get_domain(who, name)
    changes = body.model_dump(exclude_unset=True)
    changes = {k: v for k, v in changes.items() if v is not None or k == "ip_address"}
    return DomainOut.of(domain_service.modify_domain(who, domain, **changes))


@router.delete("/domains/{name}", response=responses(DeletedOut))
def delete_domain(request: HttpRequest, name: str) -> DeletedOut:
    who = actor(request)
    return DeletedOut(deleted=domain_service.delete_domain(who, get_domain(who, name)))


@router.post("/domains/{name}/verify", response=responses(DomainOut))
def verify_domain(request: HttpRequest, name: str) -> DomainOut:
    """Look for the pending name's `_courriel-verify` TXT record (shown in
    `verification`): once it holds the token, the domain takes mail."""
    who = actor(request)
    get_domain(who, name)
    return DomainOut.of(ownership.verify(who, name))  # type: ignore[arg-type]


@router.post("/domains/{name}/approve", response=responses(DomainOut))
def approve_domain(request: HttpRequest, name: str) -> DomainOut:
    """Provider: vouch for a pending name without the DNS record."""
    who = actor(request)
    get_domain(who, name)
    return DomainOut.of(ownership.approve(who, name))  # type: ignore[arg-type]


@router.get("/domains/{name}/dns", response=responses(list[DnsRecordOut]))
def dns(request: HttpRequest, name: str) -> list[DnsRecordOut]:
    """The MX, SPF, DKIM and DMARC records to publish for the domain (and the MX and SPF
    of its domain aliases)."""
    records = dns_records(get_domain(actor(request), name))
    return [DnsRecordOut(**r.as_dict(), zone_line=r.zone_line()) for r in records]


@router.get("/domains/{name}/domain-aliases", response=responses(list[DomainAliasOut]))
def list_domain_aliases(request: HttpRequest, name: str) -> list[DomainAliasOut]:
    who = actor(request)
    aliases = domain_service.list_domain_aliases(who, get_domain(who, name))
    return [DomainAliasOut.of(a) for a in aliases]


@router.post("/domains/{name}/domain-aliases", response=responses(DomainAliasOut, 201))
def add_domain_alias(
    request: HttpRequest, name: str, body: DomainAliasIn
) -> Status[DomainAliasOut]:
    who = actor(request)
    alias = domain_service.add_domain_alias(who, get_domain(who, name), body.name)
    return Status(201, DomainAliasOut.of(alias))


def _own_alias(request: HttpRequest, name: str, alias: str) -> str:
    """The alias's name, once it is known to be an alias of this domain of the caller's."""
    found = ownership.find(actor(request), alias)
    if not isinstance(found, DomainAlias) or found.domain_id != get_domain(actor(request), name).pk:
        raise NotFoundError(
            _("%(name)s is not an alias of %(domain)s.") % {"name": alias, "domain": name}
        )
    return found.name


@router.post("/domains/{name}/domain-aliases/{alias}/verify", response=responses(DomainAliasOut))
def verify_domain_alias(request: HttpRequest, name: str, alias: str) -> DomainAliasOut:
    """Look for the pending alias's `_courriel-verify` TXT record."""
    found = ownership.verify(actor(request), _own_alias(request, name, alias))
    return DomainAliasOut.of(found)  # type: ignore[arg-type]


@router.post("/domains/{name}/domain-aliases/{alias}/approve", response=responses(DomainAliasOut))
def approve_domain_alias(request: HttpRequest, name: str, alias: str) -> DomainAliasOut:
    """Provider: vouch for a pending domain alias."""
    found = ownership.approve(actor(request), _own_alias(request, name, alias))
    return DomainAliasOut.of(found)  # type: ignore[arg-type]


@router.delete("/domains/{name}/domain-aliases/{alias}", response=responses(DeletedOut))
def delete_domain_alias(request: HttpRequest, name: str, alias: str) -> DeletedOut:
    who = actor(request)
    domain_service.delete_domain_alias(who, get_domain(who, name), alias)
    return DeletedOut(deleted=[alias])
