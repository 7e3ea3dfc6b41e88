"""Rotation as chapter 12 says: the last 7 days, every 7th day kept 4 times a month."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

from courriel.backup import rotation
from courriel.backup.store import Snapshot


def snap(name: str, when: datetime) -> Snapshot:
    return Snapshot(name, Path(name), {"id": when.isoformat(), "taken_at": when.isoformat()})


def rotate(days: int, *, daily: int = 7, weekly: int = 4, every: int = 7) -> list[Snapshot]:
    start = datetime(2024, 1, 1, 3, 30)
    current: list[Snapshot] = []
    for day in range(days):
        new = snap(".incoming", start + timedelta(days=day))
        plan = rotation.plan(current, new, daily=daily, weekly=weekly, weekly_every=every)
        for i, s in enumerate(plan.daily):
            s.name = f"daily.{i}"
        for i, s in enumerate(plan.weekly):
            s.name = f"weekly.{i}"
        current = plan.daily + plan.weekly
    return current


def ages(snapshots: list[Snapshot], kind: str, today: datetime) -> list[int]:
    return [(today - s.taken_at).days for s in snapshots if s.name.startswith(kind)]


def test_seven_dailies_and_four_weeklies_a_week_apart() -> None:
    kept = rotate(60)
    today = datetime(2024, 1, 1, 3, 30) + timedelta(days=59)
    assert ages(kept, "daily", today) == [0, 1, 2, 3, 4, 5, 6]
    weekly = ages(kept, "weekly", today)
    assert len(weekly) == 4
    assert [b - a for a, b in itertools.pairwise(weekly)] == [7, 7, 7]
    assert weekly[0] in range(7, 14)  # the oldest daily, promoted
    assert [s.name for s in kept] == [f"daily.{i}" for i in range(7)] + [
        f"weekly.{i}" for i in range(4)
    ]


def test_first_week_fills_the_dailies_then_promotes() -> None:
    assert [s.name for s in rotate(7)] == [f"daily.{i}" for i in range(7)]
    assert [s.name for s in rotate(8)][-1] == "weekly.0"
    assert len([s for s in rotate(9) if s.name.startswith("weekly")]) == 1


def test_runs_by_hand_on_the_same_day_do_not_make_weeklies() -> None:
    start = datetime(2024, 1, 1, 3, 30)
    current: list[Snapshot] = []
    for run in range(20):  # twenty runs in one day
        new = snap(".incoming", start + timedelta(minutes=run))
        plan = rotation.plan(current, new, daily=7, weekly=4, weekly_every=7)
        current = plan.daily + plan.weekly
    assert len(plan.daily) == 7 and len(plan.weekly) == 1


def test_configurable_counts() -> None:
    kept = rotate(40, daily=3, weekly=2, every=3)
    assert len([s for s in kept if s.name.startswith("daily")]) == 3
    assert len([s for s in kept if s.name.startswith("weekly")]) == 2
    assert not [s for s in rotate(40, weekly=0) if s.name.startswith("weekly")]
