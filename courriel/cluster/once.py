"""Work done once for the whole platform, whichever hosting server's clock comes
first: the greylisting purge of an interval, the day's database dump. Each server
still does its own share (its queue, the backup of the mail it holds).

The first server to insert the `ScheduledRun` row of a (job, period) does the job
(the row's unique constraint is the lock: it works the same on PostgreSQL and on
SQLite, survives restarts, and says who did what). The same server may do it again
in that period (a manual `courriel backup run` after the nightly one); the others
do not. On a machine that is the whole platform there is nothing to share.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from courriel.cluster.identity import server_name

KEPT = timedelta(days=30)  # rows older than this are removed as new ones are made


def claim(job: str, period: str, node: str | None = None) -> bool:
    """Whether this server does `job` for `period` (e.g. a date, an interval's number)."""
    node = server_name() if node is None else node
    if not node:
        return True
    from courriel.bootstrap import setup_django

    setup_django()  # `courriel backup run` works without the database otherwise
    from courriel.cluster.models import ScheduledRun

    try:
        with transaction.atomic():
            ScheduledRun.objects.create(job=job, period=period, node=node)
    except IntegrityError:
        done_by = (
            ScheduledRun.objects.filter(job=job, period=period)
            .values_list("node", flat=True)
            .first()
        )
        return done_by == node
    ScheduledRun.objects.filter(started_at__lt=timezone.now() - KEPT).delete()
    return True


def finished(job: str, period: str) -> None:
    from courriel.cluster.models import ScheduledRun

    ScheduledRun.objects.filter(job=job, period=period, node=server_name()).update(
        finished_at=timezone.now()
    )
