"""The statistics' history: counts per hour (kept three days, for the 48-hour charts),
per day (kept 400 days, for the 90-day charts) and disk use per day.

Domains are A-labels of hosted virtual servers; "" holds what belongs to none (mail
relayed or refused for other domains), seen by the provider only.
"""

from __future__ import annotations

from django.db import models


class HourlyCount(models.Model):
    hour = models.DateTimeField()  # the hour's start, UTC
    metric = models.CharField(max_length=20)
    domain = models.CharField(max_length=253, blank=True)
    reason = models.CharField(max_length=30, blank=True)  # refusals only
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "metric", "domain", "reason"], name="one_hourly_count"
            )
        ]
        indexes = [models.Index(fields=["hour", "domain"])]


class DailyCount(models.Model):
    day = models.DateField()  # in the server's time zone
    metric = models.CharField(max_length=20)
    domain = models.CharField(max_length=253, blank=True)
    reason = models.CharField(max_length=30, blank=True)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "metric", "domain", "reason"], name="one_daily_count"
            )
        ]
        indexes = [models.Index(fields=["day", "domain"])]


class DailyUsage(models.Model):
    """Disk use at the day's sample: one row per mailbox, and one per domain with an
    empty login (the domain's own mailboxes together)."""

    day = models.DateField()
    domain = models.CharField(max_length=253)
    login = models.CharField(max_length=64, blank=True)
    bytes = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "domain", "login"], name="one_daily_usage")
        ]
        indexes = [models.Index(fields=["domain", "day"])]
