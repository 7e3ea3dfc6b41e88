"""Hosting servers: the machines that host customers' mail domains."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import Count

from courriel.accounts.addresses import normalize_hostname
from courriel.accounts.models import HostingServer
from courriel.accounts.permissions import Actor, require_provider
from courriel.accounts.services.fields import fitting
from courriel.audit.log import record
from courriel.errors import ConflictError, NotFoundError, ValidationError
from courriel.i18n import gettext as _


def _clean_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValidationError(
            _("%(value)s is not an IP address (e.g. 62.58.108.13).") % {"value": repr(value)},
            field="ip_address",
        ) from None


def _clean_name(name: str) -> str:
    value = (name or "").strip().lower()
    if not value or len(value) > 100 or not value.replace("-", "").replace(".", "").isalnum():
        raise ValidationError(
            _("%(name)s is not a valid server name: use letters, digits, '-' and '.'.")
            % {"name": repr(name)},
            field="name",
        )
    return value


def _clean_admin_url(value: str) -> str:
    """An https:// address or nothing (the default): it goes into the set-up mail that
    customers click, so `javascript:` or plain http there would be an attack."""
    value = fitting(HostingServer, "admin_url", value or "")
    if not value:
        return ""
    parsed = urlsplit(value)
    try:
        port_ok = parsed.port is None or 0 < parsed.port < 65536
    except ValueError:
        port_ok = False
    if (
        parsed.scheme.lower() != "https"
        or not parsed.hostname
        or parsed.username
        or parsed.password
        or not port_ok
        or any(c.isspace() or not c.isprintable() for c in value)
    ):
        raise ValidationError(
            _(
                "The administration URL must be an https:// address, e.g. "
                "https://maximusconfessor.all2all.org:10000/ (it goes into the set-up mail)."
            ),
            field="admin_url",
        )
    return value


def list_servers() -> list[HostingServer]:
    # Explicit order: Meta.ordering does not apply to an aggregated (GROUP BY) query.
    return list(HostingServer.objects.annotate(domain_count=Count("domains")).order_by("name"))


def get_server(name: str) -> HostingServer:
    try:
        return HostingServer.objects.get(name=(name or "").strip().lower())
    except HostingServer.DoesNotExist:
        raise NotFoundError(
            _("No hosting server named %(name)s. `courriel server list` shows them.")
            % {"name": repr(name)}
        ) from None


@transaction.atomic
def add_server(
    actor: Actor,
    name: str,
    hostname: str,
    *,
    ip_address: str | None = None,
    admin_url: str = "",
    accepts_domains: bool = True,
) -> HostingServer:
    require_provider(actor, _("add hosting servers"))
    name = _clean_name(name)
    hostname = normalize_hostname(hostname)
    if HostingServer.objects.filter(name=name).exists():
        raise ConflictError(
            _("A hosting server named %(name)s already exists.") % {"name": repr(name)},
            field="name",
        )
    if HostingServer.objects.filter(hostname=hostname).exists():
        raise ConflictError(
            _("A hosting server with host name %(hostname)s already exists.")
            % {"hostname": hostname}
        )
    server = HostingServer.objects.create(
        name=name,
        hostname=hostname,
        ip_address=_clean_ip(ip_address),
        admin_url=_clean_admin_url(admin_url),
        accepts_domains=accepts_domains,
    )
    record(actor, "server.add", name, hostname=hostname)
    return server


@transaction.atomic
def modify_server(actor: Actor, server: HostingServer, **changes: object) -> HostingServer:
    require_provider(actor, _("change hosting servers"))
    if "hostname" in changes:
        server.hostname = normalize_hostname(str(changes["hostname"]))
        if HostingServer.objects.filter(hostname=server.hostname).exclude(pk=server.pk).exists():
            raise ConflictError(
                _("Another server already has host name %(hostname)s.")
                % {"hostname": server.hostname}
            )
    if "ip_address" in changes:
        server.ip_address = _clean_ip(changes["ip_address"])  # type: ignore[arg-type]
    if "admin_url" in changes:
        server.admin_url = _clean_admin_url(str(changes["admin_url"] or ""))
    if "accepts_domains" in changes:
        server.accepts_domains = bool(changes["accepts_domains"])
    server.save()
    record(actor, "server.modify", server.name, **{k: str(v) for k, v in changes.items()})
    return server


@transaction.atomic
def delete_server(actor: Actor, server: HostingServer) -> None:
    require_provider(actor, _("delete hosting servers"))
    count = server.domains.count()
    if count:
        raise ConflictError(
            _(
                "Hosting server %(name)s still hosts %(count)s virtual servers: move or delete "
                "them first."
            )
            % {"name": server.name, "count": count}
        )
    record(actor, "server.delete", server.name)
    server.delete()


def pick_server(local_hostname: str) -> HostingServer:
    """Where a new domain goes when none is named: this machine if it takes new
    domains, else the accepting server with the fewest domains."""
    accepting = HostingServer.objects.filter(accepts_domains=True)
    local = accepting.filter(hostname=local_hostname).first()
    if local is not None:
        return local
    least = accepting.annotate(n=Count("domains")).order_by("n", "name").first()
    if least is None:
        raise ValidationError(
            _(
                "No hosting server takes new domains: add one with `courriel server add` "
                "or allow one with `courriel server modify NAME --accepts-domains`."
            )
        )
    return least
