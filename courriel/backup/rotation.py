"""Rotation as the manual says: the last 7 days, and every 7th day kept 4 times a month.

Like rsnapshot, `daily.0` is the newest snapshot and `daily.6` the oldest; when a new
daily arrives the oldest one leaves the daily set and is promoted to `weekly.0` if it
is at least `weekly_every` days newer than the current `weekly.0` (or there is none),
otherwise deleted. Deciding from the snapshots' dates rather than from a counter keeps
the weeklies a week apart even when days are missed or a backup is run by hand.

The plan is computed from the dates alone, so a set left with gaps or odd names by an
interrupted rotation is renumbered correctly by the next one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from courriel.backup.store import Snapshot, set_aside
from courriel.mailstore.maildir import fsync_dir


@dataclass
class Plan:
    daily: list[Snapshot]  # new daily.0, daily.1, ...
    weekly: list[Snapshot]  # new weekly.0, ...
    dropped: list[Snapshot]


def plan(
    existing: list[Snapshot], new: Snapshot, *, daily: int, weekly: int, weekly_every: int
) -> Plan:
    dailies = sorted(
        (s for s in existing if s.kind == "daily"), key=lambda s: s.taken_at, reverse=True
    )
    weeklies = sorted(
        (s for s in existing if s.kind == "weekly"), key=lambda s: s.taken_at, reverse=True
    )
    ordered = [new, *dailies]
    kept, leaving = ordered[:daily], ordered[daily:]
    dropped: list[Snapshot] = []
    for snapshot in reversed(leaving):  # oldest first, so weekly.0 ends up the newest
        newest_weekly = weeklies[0].taken_at.date() if weeklies else None
        due = (
            newest_weekly is None or (snapshot.taken_at.date() - newest_weekly).days >= weekly_every
        )
        if weekly > 0 and due:
            weeklies.insert(0, snapshot)
        else:
            dropped.append(snapshot)
    dropped += weeklies[weekly:]
    return Plan(kept, weeklies[:weekly], dropped)


def apply(directory: Path, rotation: Plan) -> list[Path]:
    """Rename into place in two steps (aside, then final names), so that any order of
    old and new names works; interrupted, it leaves only complete snapshots.

    Returns the dropped snapshots, renamed to `.trash.*`: delete them after releasing
    the readers' lock (deleting a large tree takes a while)."""
    targets = [(s, f"daily.{i}") for i, s in enumerate(rotation.daily)]
    targets += [(s, f"weekly.{i}") for i, s in enumerate(rotation.weekly)]
    moving = [(s, name) for s, name in targets if s.name != name]
    trash = [set_aside(snapshot.path) for snapshot in rotation.dropped]
    for snapshot, _ in moving:
        aside = directory / f".rotating.{snapshot.id}"
        os.rename(snapshot.path, aside)
        snapshot.path = aside
    for snapshot, name in moving:
        os.rename(snapshot.path, directory / name)
        snapshot.path, snapshot.name = directory / name, name
    fsync_dir(directory)
    return trash
