"""Scheduled work done once for the whole platform (issue 15): of several hosting
servers sharing the database, the first to claim a job's period does it; the same
server may do it again in that period, the others not; one machine alone always
does its own."""

from __future__ import annotations

from courriel.cluster.models import ScheduledRun
from courriel.cluster.once import claim


def test_the_first_server_to_claim_a_period_does_the_job(db: None) -> None:
    assert claim("greylist-purge", "493000", node="maximusconfessor")
    assert not claim("greylist-purge", "493000", node="moses")
    assert not claim("greylist-purge", "493000", node="vonmuenchhausen")
    assert claim("greylist-purge", "493000", node="maximusconfessor")  # a manual run again
    assert claim("greylist-purge", "493001", node="moses")  # the next interval: anyone's
    assert claim("database-dump", "2026-12-04", node="moses")
    assert not claim("database-dump", "2026-12-04", node="maximusconfessor")
    rows = sorted(ScheduledRun.objects.values_list("job", "period", "node"))
    assert rows == [
        ("database-dump", "2026-12-04", "moses"),
        ("greylist-purge", "493000", "maximusconfessor"),
        ("greylist-purge", "493001", "moses"),
    ]


def test_one_machine_alone_does_everything_without_asking(db: None) -> None:
    assert claim("greylist-purge", "1", node="")
    assert claim("greylist-purge", "1", node="")
    assert not ScheduledRun.objects.exists()
