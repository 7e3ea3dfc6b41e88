"""Registering this machine as a node of the platform when `courriel serve` starts.

The node's row says how the others reach it (address, ports), how they trust its
certificate (fingerprint) and how they check that a connection claiming to be it
is (the hash of its secret). A row registered with another secret belongs to
another machine: starting a second machine under the same name is refused, since
the two would each take the other's mail.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

import courriel
from courriel.accounts.models import HostingServer
from courriel.accounts.permissions import Actor, require_provider
from courriel.audit.log import record
from courriel.cluster.identity import (
    certificate_fingerprint,
    digest,
    node_secret,
    secret_matches,
    server_name,
    unknown_server_message,
    uses_postgresql,
)
from courriel.cluster.models import Node
from courriel.config import Config
from courriel.errors import ConfigError
from courriel.i18n import gettext as _

log = logging.getLogger("courriel.cluster")


def advertised_address(config: Config, server: HostingServer) -> str:
    """How the other nodes reach this one: `[cluster] address`, else the hosting
    server's IP address, else its host name."""
    return config.cluster.address.strip() or server.ip_address or server.hostname


def sqlite_refusal(other: str) -> str:
    return _(
        "This platform's database is SQLite, a file of one machine, and hosting server "
        "%(other)s already runs on it. Several hosting servers need one PostgreSQL "
        "database that they all share ([database] url): see the README, 'Several hosting "
        "servers'."
    ) % {"other": other}


@transaction.atomic
def register(config: Config) -> Node:
    """Create or refresh this node's row; refuse what would split a domain's mail."""
    name = server_name(config)
    server = HostingServer.objects.select_for_update().filter(name=name).first()
    if server is None:
        raise ConfigError(unknown_server_message(name))
    if not uses_postgresql(config):
        other = Node.objects.exclude(server=server).select_related("server").first()
        if other is not None:
            raise ConfigError(sqlite_refusal(other.server.name))
    secret_hash = digest(node_secret(config, create=True))
    node = Node.objects.filter(server=server).first()
    if node is not None and node.secret_hash != secret_hash:
        raise ConfigError(
            _(
                "Hosting server %(name)s is registered to another machine (its cluster key "
                "is not this one's, %(path)s; last seen %(seen)s). Two machines must never run "
                "as one server. If this machine replaces it, run `courriel server "
                "forget-node %(name)s` first."
            )
            % {
                "name": name,
                "path": config.data_dir / "cluster.key",
                "seen": node.heartbeat_at.isoformat(timespec="seconds")
                if node.heartbeat_at
                else _("never"),
            }
        )
    now = timezone.now()
    values = {
        "secret_hash": secret_hash,
        "address": advertised_address(config, server),
        "cluster_port": int(config.cluster.port),
        "web_port": int(config.web.port),
        "fingerprint": certificate_fingerprint(config),
        "version": courriel.__version__,
        "routing_cache_seconds": int(config.smtp.routing_cache_seconds),
        "started_at": now,
        "heartbeat_at": now,
        "stopped_at": None,
    }
    if node is None:
        node = Node.objects.create(server=server, **values)
        log.warning("registered this machine as hosting server %s", name)
    else:
        for key, value in values.items():
            setattr(node, key, value)
        node.save()
    return node


def refresh_fingerprint(config: Config) -> None:
    """After SIGHUP or a renewal: the others pin the certificate now served."""
    Node.objects.filter(server__name=server_name(config)).update(
        fingerprint=certificate_fingerprint(config)
    )


@transaction.atomic
def forget(actor: Actor, server: HostingServer) -> bool:
    """`courriel server forget-node`: the next machine started as this server registers."""
    require_provider(actor, _("forget a hosting server's machine"))
    removed = Node.objects.filter(server=server).delete()[0] > 0
    if removed:
        record(actor, "server.forget-node", server.name)
    return removed


def node_secret_ok(name: str, secret: str) -> bool:
    """Whether `secret` is the one node `name` registered (only its hash is kept)."""
    stored = Node.objects.filter(server__name=name).values_list("secret_hash", flat=True).first()
    return stored is not None and secret_matches(secret, stored)


def node_sign_in(name: str, secret: str, ip: str, door: str) -> int:
    """A node signing in (LMTP link, RPC): 0 if it is `name`, -1 if not (recorded, as
    any failed sign-in, see accounts.throttle), else seconds to wait first."""
    from courriel.accounts.throttle import throttle

    login = f"node:{name}"[:150]
    verdict = throttle.check(login, ip, secret, pace=False)
    if verdict.wait:
        return verdict.wait
    if node_secret_ok(name, secret):
        return 0
    if not verdict.repeat:
        throttle.failed(login, ip, secret, door)
    log.warning("refused a sign-in as node %r from %s (%s)", name, ip, door)
    return -1
