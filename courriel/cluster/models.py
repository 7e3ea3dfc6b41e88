"""What the hosting servers of one platform share through the database: each running
server's registration and live status (`Node`), domain moves in progress or done
(`DomainMove`), and which server did a piece of platform-wide scheduled work
(`ScheduledRun`).

`Node` is a one-to-one companion of `accounts.HostingServer`, which stays the
provider's record of a machine: a hosting server becomes a node when a
`courriel serve` with `[general] server` naming it starts.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from courriel.accounts.models import Domain, HostingServer


class Node(models.Model):
    """A running hosting server: how to reach it, how to trust it, how it is doing."""

    server = models.OneToOneField(HostingServer, on_delete=models.CASCADE, related_name="node")
    # SHA-256 of the node's secret (<data_dir>/cluster.key): the secret itself is
    # never stored here, so a copy of the database cannot sign in as a node.
    secret_hash = models.CharField(max_length=64)
    address = models.CharField(max_length=253)
    cluster_port = models.IntegerField()
    web_port = models.IntegerField()
    # SHA-256 of its TLS certificate (DER, lower-case hex): what the others pin.
    fingerprint = models.CharField(max_length=64, blank=True)
    version = models.CharField(max_length=40, blank=True)
    routing_cache_seconds = models.IntegerField(default=30)
    started_at = models.DateTimeField(null=True)
    heartbeat_at = models.DateTimeField(null=True)
    stopped_at = models.DateTimeField(null=True)  # a clean stop (SIGTERM)
    # What `courriel status --all` shows: services, queue, disk, last backup...
    status = models.JSONField(default=dict)

    class Meta:
        ordering = ["server__name"]

    def __str__(self) -> str:
        return self.server.name


class DomainMove(models.Model):
    """Moving a customer's domain (with its sub-servers) to another hosting server.

    The target server's `courriel serve` does the work and records each step here,
    so that a move survives a crash of any process and shows its progress anywhere.
    """

    COPYING = "copying"  # Maildirs copied while mail keeps arriving; cancellable
    SWITCHING = "switching"  # old copy frozen, last changes copied, home switched
    DRAINING = "draining"  # late mail at the old server handed to the new one
    DONE = "done"
    CANCELLED = "cancelled"
    ACTIVE = (COPYING, SWITCHING, DRAINING)
    STATES = [
        (COPYING, _("copying")),
        (SWITCHING, _("switching")),
        (DRAINING, _("draining")),
        (DONE, _("done")),
        (CANCELLED, _("cancelled")),
    ]

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="moves")
    source = models.ForeignKey(HostingServer, on_delete=models.PROTECT, related_name="+")
    target = models.ForeignKey(HostingServer, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=12, choices=STATES, default=COPYING)
    requested_by = models.CharField(max_length=150, blank=True)
    cancel_requested = models.BooleanField(default=False)
    fenced = models.BooleanField(default=False)  # the old server froze its copy
    passes = models.IntegerField(default=0)
    files_total = models.BigIntegerField(default=0)
    files_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    late_messages = models.IntegerField(default=0)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    switched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["domain"],
                condition=models.Q(state__in=["copying", "switching", "draining"]),
                name="one_active_move_per_domain",
            )
        ]

    def __str__(self) -> str:
        return f"{self.domain.name}: {self.source.name} -> {self.target.name} ({self.state})"

    @property
    def active(self) -> bool:
        return self.state in self.ACTIVE


class ScheduledRun(models.Model):
    """Work done once for the whole platform in a period (a day's database dump, an
    hour's greylisting purge): the node that inserts the row does it."""

    job = models.CharField(max_length=60)
    period = models.CharField(max_length=40)
    node = models.CharField(max_length=100)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "period"], name="scheduled_run_once")]


class NodeChore(models.Model):
    """Work on one hosting server's own files that a change made elsewhere decided: a
    mailbox deleted through another node (its Maildir is retired there), a quota
    changed through another node (its `maildirsize` limit line follows).

    Written in the same transaction as the change, so that it cannot be lost; the
    node does it when the other one nudges it after the commit, or at its next round.
    """

    RETIRE = "retire"
    QUOTA = "quota"
    KINDS = [(RETIRE, "retire"), (QUOTA, "quota")]

    server = models.ForeignKey(HostingServer, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=KINDS)
    login = models.CharField(max_length=150)
    maildir = models.CharField(max_length=500)  # relative to the mail root
    quota = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.maildir} on {self.server_id}"
