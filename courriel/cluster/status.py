"""Every hosting server of the platform as the provider sees it: `courriel status
--all` and the panel's System Information. What each node said in its last heartbeat
(services, queue, disk, last backup, version), how long ago, and, when asked, whether
it answers right now over its authenticated link.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count
from django.utils import timezone

from courriel.accounts.models import HostingServer
from courriel.cluster.identity import ALIVE, server_name
from courriel.cluster.models import Node
from courriel.i18n import gettext as _

RUNNING, SILENT, STOPPED, NOT_STARTED = "running", "not answering", "stopped", "not started"


@dataclass
class NodeStatus:
    name: str
    hostname: str
    address: str
    state: str  # RUNNING, SILENT, STOPPED or NOT_STARTED
    this: bool
    domains: int
    version: str = ""
    last_seen: datetime | None = None
    seconds_since: int | None = None
    answers: bool | None = None  # None: not asked
    answer_error: str = ""
    services: dict[str, str] = field(default_factory=dict)
    queue: dict[str, Any] = field(default_factory=dict)
    disk: dict[str, Any] = field(default_factory=dict)
    last_backup: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["last_seen"] = self.last_seen.isoformat() if self.last_seen else None
        return data

    @property
    def summary(self) -> str:
        return summary_line(self)

    @property
    def state_label(self) -> str:
        return {
            RUNNING: _("running"),
            SILENT: _("not answering"),
            STOPPED: _("stopped"),
            NOT_STARTED: _("not started"),
        }[self.state]


def _state(node: Node | None, now: datetime) -> str:
    if node is None or node.heartbeat_at is None:
        return NOT_STARTED
    if node.stopped_at is not None and node.stopped_at >= node.heartbeat_at:
        return STOPPED
    return RUNNING if now - node.heartbeat_at < ALIVE else SILENT


def _probe(node: Node) -> tuple[bool, str]:
    from courriel.cluster import rpc
    from courriel.cluster.placement import Peer

    try:
        rpc.call(Peer.of(node), "ping", timeout=10)
    except (rpc.RpcError, OSError) as error:
        return False, str(error)
    return True, ""


def platform_status(probe: bool = False) -> list[NodeStatus]:
    """One line per hosting server; with `probe`, each running node is also asked
    over its link (from this machine, which must be a node to sign in)."""
    now = timezone.now()
    here = server_name()
    nodes = {n.server_id: n for n in Node.objects.all()}
    found: list[NodeStatus] = []
    for server in HostingServer.objects.annotate(n=Count("domains")).order_by("name"):
        node = nodes.get(server.pk)
        status = node.status if node is not None else {}
        found.append(
            NodeStatus(
                name=server.name,
                hostname=server.hostname,
                address=node.address if node else (server.ip_address or ""),
                state=_state(node, now),
                this=server.name == here,
                domains=server.n,
                version=node.version if node else "",
                last_seen=node.heartbeat_at if node else None,
                seconds_since=int((now - node.heartbeat_at).total_seconds())
                if node and node.heartbeat_at
                else None,
                services=status.get("services", {}),
                queue=status.get("queue", {}),
                disk=status.get("disk", {}),
                last_backup=status.get("last_backup"),
            )
        )
    if probe and here:
        targets = [(status, nodes[server.pk]) for status, server in _servers(found)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda pair: _probe(pair[1]), targets))
        for (status, _node), (ok, error) in zip(targets, answers, strict=True):
            status.answers, status.answer_error = ok, error
            if not ok and status.state == RUNNING:
                status.state = SILENT
    return found


def _servers(found: list[NodeStatus]) -> list[tuple[NodeStatus, HostingServer]]:
    by_name = {s.name: s for s in HostingServer.objects.filter(name__in=[f.name for f in found])}
    return [(status, by_name[status.name]) for status in found if status.state != NOT_STARTED]


def summary_line(status: NodeStatus) -> str:
    """One line for a table cell: queue, disk and backup of a node."""
    from courriel.units import format_size

    parts = []
    if status.queue:
        parts.append(
            _("queue %(entries)s (%(deferred)s deferred)")
            % {
                "entries": status.queue.get("entries", 0),
                "deferred": status.queue.get("deferred", 0),
            }
        )
    if status.disk:
        parts.append(_("%(free)s free") % {"free": format_size(status.disk.get("free"))})
    backup = status.last_backup
    if backup and backup.get("finished_at"):
        parts.append(
            _("backup %(when)s %(ok)s")
            % {
                "when": backup["finished_at"][:16],
                "ok": _("ok") if backup.get("ok") else _("FAILED"),
            }
        )
    elif status.state != NOT_STARTED:
        parts.append(_("no backup yet"))
    return ", ".join(parts)
