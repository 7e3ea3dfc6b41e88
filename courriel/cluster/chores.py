"""Changes decided on one hosting server for files that live on another: the Maildir
of a mailbox deleted through node A is retired on node B, which holds it; a quota
changed through A is written into the `maildirsize` on B (Dovecot reads it).

A chore row is written in the transaction of the change (see `NodeChore`), the
holding node is nudged once the change is committed, and every node does its own
pending chores at start and now and then, so a node that was down catches up. A
node that did chores forgets its routing cache: copies other nodes hand over are
checked against its rows, and a deleted mailbox must not take one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction

from courriel.accounts.models import Mailbox
from courriel.accounts.routing_cache import bump
from courriel.cluster.identity import local_server_id
from courriel.config import get_config

log = logging.getLogger("courriel.cluster")


def plan_retirements(mailboxes: Iterable[Mailbox]) -> None:
    """Inside the deletion's transaction: their homes retire their Maildirs."""
    from courriel.cluster.models import NodeChore

    _nudge_on_commit({_plan(mailbox, NodeChore.RETIRE) for mailbox in mailboxes})


def plan_quota(mailbox: Mailbox) -> None:
    """Inside the change's transaction: its home writes the new limit."""
    from courriel.cluster.models import NodeChore

    _nudge_on_commit({_plan(mailbox, NodeChore.QUOTA, mailbox.quota)})


def _plan(mailbox: Mailbox, kind: str, quota: int | None = None) -> int | None:
    """The chore for the mailbox's home; that home's server id."""
    from courriel.cluster.models import NodeChore

    server = mailbox.domain.server_id
    NodeChore.objects.create(
        server_id=server, kind=kind, login=mailbox.login, maildir=mailbox.maildir, quota=quota
    )
    return server


def retiring(login: str) -> str | None:
    """The hosting server still retiring a deleted mailbox of this login, if any: a new
    mailbox of the same login would get the same Maildir, with the old mail in it."""
    from courriel.cluster.models import NodeChore

    chore = (
        NodeChore.objects.filter(kind=NodeChore.RETIRE, login=login)
        .select_related("server")
        .first()
    )
    return chore.server.name if chore else None


def _nudge_on_commit(servers: set[int | None]) -> None:
    def nudge() -> None:
        from courriel.cluster import rpc
        from courriel.cluster.placement import peer

        for server_id in servers:
            target = peer(server_id) if server_id is not None else None
            if target is None:
                continue  # not running: it does its chores when it starts
            try:
                rpc.call(target, "chores", {}, timeout=5)
            except rpc.RpcError as error:
                log.warning("%s not nudged (%s): its chores wait for its round", target.name, error)

    transaction.on_commit(nudge)


def run_chores() -> int:
    """This node's pending chores, oldest first; how many were done."""
    from courriel.cluster.models import NodeChore
    from courriel.mailstore.layout import retire
    from courriel.mailstore.quota import set_limit

    here = local_server_id()
    if here is None:
        return 0
    config = get_config()
    done = 0
    for chore in NodeChore.objects.filter(server_id=here):
        path = config.mail_root / chore.maildir
        if chore.kind == NodeChore.RETIRE:
            if Mailbox.objects.filter(maildir=chore.maildir).exists():
                log.error("%s: a new mailbox has the deleted one's Maildir; kept", chore.login)
            else:
                retire(path, config.data_dir / "deleted")
                log.warning("%s: Maildir of the deleted mailbox retired", chore.login)
        elif path.is_dir() and Mailbox.objects.filter(maildir=chore.maildir).exists():
            set_limit(path, chore.quota)
        chore.delete()
        done += 1
    if done:
        bump()
    return done
