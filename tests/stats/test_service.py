"""What the main process samples for the statistics: disk use once a day (the
mailboxes whose Maildir is on this machine; the day's figure replaced when taken
again), the queue's size, and the pruning of old rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from django.utils import timezone

from courriel.accounts.models import Mailbox
from courriel.config import get_config
from courriel.mailstore.layout import create_maildir
from courriel.mailstore.maildir import deliver
from courriel.stats.models import DailyCount, DailyUsage, HourlyCount
from courriel.stats.service import StatsService, prune, sample_disk_usage
from tests.fixtures.accounts import Customer


def test_disk_use_per_mailbox_and_domain(monsite: Customer, info: Mailbox) -> None:
    root = get_config().mail_root
    create_maildir(monsite.owner.maildir_path(root))
    create_maildir(info.maildir_path(root))
    deliver(info.maildir_path(root), b"Subject: x\r\n\r\n" + b"x" * 5000, durable=False)
    day = date(2099, 9, 9)
    assert sample_disk_usage(day) == 2
    sizes = dict(DailyUsage.objects.filter(day=day).values_list("login", "bytes"))
    assert sizes["monsite0001"] >= 5000 and sizes[""] == sizes["monsite0001"] + sizes["monsite"]
    sample_disk_usage(day)  # again the same day: replaced, not doubled
    assert DailyUsage.objects.filter(day=day).count() == 3


def test_a_mailbox_kept_elsewhere_is_not_measured_here(monsite: Customer, info: Mailbox) -> None:
    assert sample_disk_usage(date(2099, 9, 9)) == 0  # no Maildir on this machine
    assert not DailyUsage.objects.exists()


def test_old_rows_go(monsite: Customer) -> None:
    now = datetime(2099, 9, 9, 12, tzinfo=UTC)
    for hours in (1, 100):
        HourlyCount.objects.create(hour=now - timedelta(hours=hours), metric="received", count=1)
    for days in (10, 500):
        DailyCount.objects.create(day=now.date() - timedelta(days=days), metric="sent", count=1)
    prune(now)
    assert HourlyCount.objects.count() == 1 and DailyCount.objects.count() == 1


def test_the_service_samples_the_queue_and_the_day(monsite: Customer) -> None:
    service = StatsService()
    service.run_once()
    assert service.sampled == timezone.localdate()
    assert HourlyCount.objects.get(metric="queue").count == 0
