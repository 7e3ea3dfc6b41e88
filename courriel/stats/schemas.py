"""The statistics as the API and `courriel stats show --json` give them."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel

from courriel.stats.figures import Figures


class _Counts(BaseModel):
    """What one hour or one day counts."""

    received: int
    delivered: int
    forwarded: int
    refused: int
    greylisted: int
    sent: int


class HourOut(_Counts):
    hour: datetime


class DayOut(_Counts):
    day: date


class DiskOut(BaseModel):
    by: str  # "domain", or "mailbox" when one domain is asked for
    days: list[date]
    bytes: dict[str, list[int | None]]  # name -> one figure a day (null: not measured)


class StatisticsOut(BaseModel):
    domain: str | None  # the one domain asked for
    domains: list[str] | None  # the domains counted; null: every one (the provider)
    hours: list[HourOut]  # the last 48 hours, oldest first
    days: list[DayOut]  # the last 90 days
    refused_by_reason_48h: dict[str, int]
    refused_by_reason_90d: dict[str, int]
    disk: DiskOut
    queue_now: int | None  # the provider's view of all domains only
    queue_hours: list[int] | None

    @classmethod
    def of(cls, figures: Figures) -> StatisticsOut:
        def rows(keys: list, values: dict[str, list[int]], name: str) -> list[dict]:  # type: ignore[type-arg]
            return [
                {name: key, **{metric: counts[n] for metric, counts in values.items()}}
                for n, key in enumerate(keys)
            ]

        return cls(
            domain=figures.single,
            domains=figures.scope,
            hours=[HourOut(**row) for row in rows(figures.hours, figures.hourly, "hour")],
            days=[DayOut(**row) for row in rows(figures.days, figures.daily, "day")],
            refused_by_reason_48h=figures.refused_48h,
            refused_by_reason_90d=figures.refused_90d,
            disk=DiskOut(by=figures.disk_by, days=figures.disk_days, bytes=figures.disk),
            queue_now=figures.queue_now,
            queue_hours=figures.queue_hours,
        )
