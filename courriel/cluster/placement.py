"""Which hosting server holds a mailbox: the one decision the mail plane, the queue,
the IMAP/POP3 logins and the panel ask before touching a Maildir.

A domain's mail lives on its `Domain.server`. On a machine that is the whole
platform (no `[general] server`) everything is local. The mail plane decides from
the mailbox rows of its routing cache (fast, possibly `[smtp] routing_cache_seconds`
old), and so does the `[cluster]` listener storing a copy another node handed over:
what either still stores at a moved domain's old place is swept to its new home
(`sweep`). The queue runner (entries that may be hours old), the logins and the
mailbox download ask `fresh_home` (one query) instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from courriel.cluster.identity import local_server_id

if TYPE_CHECKING:
    from courriel.accounts.models import Mailbox
    from courriel.cluster.models import Node


def held_elsewhere(mailbox: Mailbox) -> bool:
    """Whether the mailbox's mail lives on another hosting server (from the row as
    given: the routing cache's, with its domain)."""
    here = local_server_id()
    return here is not None and mailbox.domain.server_id != here


def fresh_home(mailbox_id: int) -> int | None:
    """The hosting server holding the mailbox now (read from the database), None if
    the mailbox is gone."""
    from courriel.accounts.models import Mailbox

    return Mailbox.objects.filter(pk=mailbox_id).values_list("domain__server_id", flat=True).first()


def is_here(server_id: int | None) -> bool:
    here = local_server_id()
    return here is None or server_id == here


@dataclass(frozen=True)
class Peer:
    """How to reach and trust another node (a snapshot of its `Node` row)."""

    server_id: int
    name: str
    hostname: str
    address: str
    cluster_port: int
    web_port: int
    fingerprint: str

    @classmethod
    def of(cls, node: Node) -> Peer:
        return cls(
            node.server_id,
            node.server.name,
            node.server.hostname,
            node.address,
            node.cluster_port,
            node.web_port,
            node.fingerprint,
        )


_PEER_SECONDS = 5.0
_peers: dict[int, tuple[float, Peer | None]] = {}


def peer(server_id: int) -> Peer | None:
    """The running node of a hosting server (None: no machine runs it yet), cached a
    few seconds: a node that restarts with a new address or certificate is seen soon."""
    from courriel.cluster.models import Node

    now = time.monotonic()
    found = _peers.get(server_id)
    if found is not None and found[0] > now:
        return found[1]
    node = Node.objects.select_related("server").filter(server_id=server_id).first()
    value = Peer.of(node) if node is not None else None
    _peers[server_id] = (now + _PEER_SECONDS, value)
    return value


def forget_peers() -> None:
    _peers.clear()


class MovingNow(Exception):
    """The mailbox's domain is switching to another hosting server (seconds)."""


def login_home(mailbox_id: int) -> int | None:
    """For an IMAP/POP3 login: the hosting server to hand the session to, None when
    the mailbox's mail is here. While its domain switches servers, neither copy may
    be touched: MovingNow (the client is told to try again in a moment)."""
    from courriel.cluster.identity import clustered

    if not clustered():
        return None
    from courriel.accounts.models import Mailbox
    from courriel.cluster.models import DomainMove

    row = (
        Mailbox.objects.filter(pk=mailbox_id)
        .values_list("domain_id", "domain__parent_id", "domain__server_id")
        .first()
    )
    if row is None:
        return None
    domain_id, parent_id, server_id = row
    if DomainMove.objects.filter(
        domain_id=parent_id or domain_id, state=DomainMove.SWITCHING
    ).exists():
        raise MovingNow()
    return None if is_here(server_id) else server_id
