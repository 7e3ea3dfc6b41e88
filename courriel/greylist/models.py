"""Greylisting state, shared by every hosting server through the database.

Times of the hot path (first seen, last seen, passed) are POSIX timestamps (floats):
the engine works in `time.time()` units with an injectable clock, and the store
writes them in batches without converting each one.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Triplet(models.Model):
    """One (client network, sender, recipient) triplet, normalised.

    The primary key is a 64-bit hash of the normalised triplet: one fixed-size index
    serves the hot-path look-up whatever the length of the addresses (the chance of
    two triplets sharing a key among a million is about 1 in 30 million). The only
    other index is on the recipient, for "why was mail to me delayed?": every index
    is a random write per new triplet, and a million-row store must stay cheap to
    write; searches by sender or client network alone read the table.
    """

    # Always given (the hash), never generated: an auto field only because SQLite then
    # makes it the rowid, so a look-up or an insert walks one B-tree instead of two.
    id = models.BigAutoField(primary_key=True)
    client_net = models.CharField(_("client network"), max_length=49)
    sender = models.CharField(_("sender"), max_length=320)
    recipient = models.CharField(_("recipient"), max_length=320, db_index=True)
    client_ip = models.CharField(_("client address"), max_length=45)
    first_seen = models.FloatField(_("first seen"))
    last_seen = models.FloatField(_("last seen"))
    passed_at = models.FloatField(_("passed"), null=True, blank=True)
    deferrals = models.IntegerField(_("deferrals"), default=0)
    passes = models.IntegerField(_("messages accepted"), default=0)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"{self.client_net} {self.sender} -> {self.recipient}"


class AutoWhitelist(models.Model):
    """A client network and how many times its triplets passed greylisting."""

    network = models.CharField(_("client network"), max_length=49, primary_key=True)
    passes = models.IntegerField(_("passes"), default=0)
    first_seen = models.FloatField(_("first seen"))
    last_seen = models.FloatField(_("last seen"))
    last_counted = models.FloatField(default=0)

    class Meta:
        ordering = ["network"]

    def __str__(self) -> str:
        return f"{self.network} ({self.passes})"


class WhitelistEntry(models.Model):
    """A static whitelist entry added by the provider (or imported from postgrey)."""

    CLIENT = "client"
    SENDER = "sender"
    RECIPIENT = "recipient"
    KINDS = [
        (CLIENT, _("client address, network or host name")),
        (SENDER, _("sender domain or address")),
        (RECIPIENT, _("recipient")),
    ]

    kind = models.CharField(_("kind"), max_length=10, choices=KINDS)
    value = models.CharField(_("value"), max_length=300)
    comment = models.CharField(_("comment"), max_length=300, blank=True)
    source = models.CharField(_("source"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("added on"), auto_now_add=True)
    created_by = models.CharField(_("added by"), max_length=150, blank=True)

    class Meta:
        ordering = ["kind", "value"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="unique_greylist_whitelist")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


class DomainGreylisting(models.Model):
    """A domain's greylisting switch (its owner may turn it off) and delay override."""

    domain = models.OneToOneField(
        "accounts.Domain", on_delete=models.CASCADE, related_name="greylisting"
    )
    enabled = models.BooleanField(_("greylisting"), default=True)
    delay = models.IntegerField(_("delay (seconds)"), null=True, blank=True)
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return f"{self.domain}: {'on' if self.enabled else 'off'}"


class MailboxGreylisting(models.Model):
    """One mailbox's greylisting switch (its domain's owner may turn it off)."""

    mailbox = models.OneToOneField(
        "accounts.Mailbox", on_delete=models.CASCADE, related_name="greylisting"
    )
    enabled = models.BooleanField(_("greylisting"), default=True)
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return f"{self.mailbox}: {'on' if self.enabled else 'off'}"


class Revision(models.Model):
    """A counter bumped by every whitelist or switch change, so that each running
    engine (on every hosting server) notices with one tiny read and reloads."""

    name = models.CharField(max_length=40, primary_key=True)
    value = models.BigIntegerField(default=0)


class DailyCount(models.Model):
    """What greylisting did, per day and hosting server, for the status page and metrics."""

    day = models.DateField()
    host = models.CharField(max_length=253)
    deferred = models.BigIntegerField(default=0)
    passed_retry = models.BigIntegerField(default=0)
    passed_known = models.BigIntegerField(default=0)
    passed_whitelist = models.BigIntegerField(default=0)
    passed_auto = models.BigIntegerField(default=0)
    store_errors = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-day", "host"]
        constraints = [
            models.UniqueConstraint(fields=["day", "host"], name="unique_greylist_day_host")
        ]
