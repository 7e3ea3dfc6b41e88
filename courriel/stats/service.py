"""What `courriel serve`'s main process records for the statistics besides the mail
plane's counts: the queue's size every few minutes, every mailbox's disk use once a
day, and the pruning of old rows.

Disk use is read from each Maildir's `maildirsize` (one small read per mailbox), for
the mailboxes whose Maildir is on this machine (every hosting server of a provider
records its own, as its backups copy its own).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from courriel.config import Config, get_config
from courriel.periodic import PeriodicJob
from courriel.stats import counters
from courriel.stats.models import DailyCount, DailyUsage, HourlyCount

KEEP_HOURS = 72
KEEP_DAYS = 400


def queue_size() -> int:
    from courriel.outbound.spool import get_spool

    return sum(1 for _ in get_spool().entries())


@transaction.atomic
def sample_disk_usage(day: date | None = None) -> int:
    """Record every mailbox's disk use (and each domain's total) for `day`; returns
    how many mailboxes were read. Recording the same day again replaces it."""
    from courriel.accounts.models import Mailbox
    from courriel.mailstore.quota import maildir_usage

    day = day or timezone.localdate()
    root = get_config().mail_root
    rows: list[DailyUsage] = []
    totals: dict[str, int] = {}
    for domain, login, maildir in Mailbox.objects.values_list("domain__name", "login", "maildir"):
        path = root / maildir
        if not path.is_dir():
            continue  # on another hosting server
        size = maildir_usage(path)
        rows.append(DailyUsage(day=day, domain=domain, login=login, bytes=size))
        totals[domain] = totals.get(domain, 0) + size
    rows += [DailyUsage(day=day, domain=d, login="", bytes=size) for d, size in totals.items()]
    DailyUsage.objects.filter(day=day, domain__in=totals).delete()
    DailyUsage.objects.bulk_create(rows, batch_size=1000)
    return len(rows) - len(totals)


def sample_queue(when: datetime | None = None) -> int:
    size = queue_size()
    counters.gauge("queue", size, when)
    return size


def prune(now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    HourlyCount.objects.filter(hour__lt=now - timedelta(hours=KEEP_HOURS)).delete()
    oldest = timezone.localtime(now).date() - timedelta(days=KEEP_DAYS)
    DailyCount.objects.filter(day__lt=oldest).delete()
    DailyUsage.objects.filter(day__lt=oldest).delete()


class StatsService(PeriodicJob):
    """Samples the queue every `interval` seconds, and disk use on the first sample of
    each day (so a server started at any hour has the day's figure)."""

    name = "statistics"
    failure = "could not record the statistics' samples (will retry)"

    def __init__(self, interval: float = 300.0) -> None:
        super().__init__(interval)
        self.sampled: date | None = None

    def run_once(self) -> None:
        sample_queue()
        today = timezone.localdate()
        if self.sampled != today:
            sample_disk_usage(today)
            prune()
            self.sampled = today


def services(config: Config) -> list[Any]:
    return [StatsService()]
