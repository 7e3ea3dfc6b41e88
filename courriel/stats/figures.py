"""The statistics a person may see, for the Statistics pages, the API and the CLI.

The provider sees every domain (and "" for mail that belonged to none); a domain
owner sees their own domains; a mailbox user sees none. `statistics` is the one
place that decides, through `courriel.accounts.permissions` like every service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db.models import Q, Sum
from django.utils import timezone

from courriel.accounts.permissions import Actor, get_domain, visible_domains
from courriel.errors import NotFoundError, PermissionDeniedError
from courriel.i18n import gettext as _
from courriel.stats.counters import METRICS
from courriel.stats.models import DailyCount, DailyUsage, HourlyCount

HOURS = 48
DAYS = 90
TOP = 10  # lines of the disk use charts; the rest together as "others"


@dataclass
class Figures:
    scope: list[str] | None  # domain names; None: everything (the provider)
    single: str | None  # the one domain looked at, if one
    hours: list[datetime]  # each hour's start, in the server's time zone
    hourly: dict[str, list[int]]  # metric -> count per hour
    days: list[date]
    daily: dict[str, list[int]]
    refused_48h: dict[str, int]  # reason -> count
    refused_90d: dict[str, int]
    disk_days: list[date] = field(default_factory=list)
    disk: dict[str, list[int | None]] = field(default_factory=dict)  # domain or login -> bytes
    disk_by: str = "domain"  # "domain" or "mailbox"
    queue_now: int | None = None  # provider only
    queue_hours: list[int] | None = None

    def totals(self, per: str = "hour") -> dict[str, int]:
        values = self.hourly if per == "hour" else self.daily
        return {metric: sum(counts) for metric, counts in values.items()}


def scope_for(actor: Actor, domain: str | None = None) -> tuple[list[str] | None, str | None]:
    """(the domains counted, or None for everything; the one domain asked for)."""
    if domain:
        found = get_domain(actor, domain)  # another customer's: not found
        if actor.role == "mailbox":
            raise NotFoundError(_("No virtual server named %(name)s.") % {"name": repr(domain)})
        return [found.name], found.name
    if actor.is_provider:
        return None, None
    if actor.role != "owner":
        raise PermissionDeniedError(_("Statistics are for domain owners and the provider."))
    return sorted(visible_domains(actor).values_list("name", flat=True)), None


def _within(scope: list[str] | None) -> Q:
    return Q() if scope is None else Q(domain__in=scope)


def statistics(
    actor: Actor,
    domain: str | None = None,
    *,
    family: list[str] | None = None,
    now: datetime | None = None,
) -> Figures:
    """The figures over the last 48 hours and 90 days. `family`: instead of all the
    domains the actor may see, these (already looked up through the permissions)."""
    scope, single = scope_for(actor, domain)
    if family is not None and single is None:
        scope = family
    now = now or datetime.now(UTC)
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - timedelta(hours=HOURS - 1 - n) for n in range(HOURS)]
    today = timezone.localtime(now).date()
    days = [today - timedelta(days=DAYS - 1 - n) for n in range(DAYS)]

    hourly = {metric: [0] * HOURS for metric in METRICS}
    refused_48h: dict[str, int] = {}
    index = {hour: n for n, hour in enumerate(hours)}
    rows = (
        HourlyCount.objects.filter(_within(scope), hour__gte=hours[0], metric__in=METRICS)
        .values_list("hour", "metric", "reason")
        .annotate(total=Sum("count"))
    )
    for hour, metric, reason, total in rows:
        position = index.get(hour.astimezone(UTC))
        if position is not None:
            hourly[metric][position] += total
        if metric == "refused":
            refused_48h[reason] = refused_48h.get(reason, 0) + total

    daily = {metric: [0] * DAYS for metric in METRICS}
    refused_90d: dict[str, int] = {}
    day_index = {day: n for n, day in enumerate(days)}
    for day, metric, reason, total in (
        DailyCount.objects.filter(_within(scope), day__gte=days[0], metric__in=METRICS)
        .values_list("day", "metric", "reason")
        .annotate(total=Sum("count"))
    ):
        position = day_index.get(day)
        if position is not None:
            daily[metric][position] += total
        if metric == "refused":
            refused_90d[reason] = refused_90d.get(reason, 0) + total

    figures = Figures(
        scope,
        single,
        [timezone.localtime(h) for h in hours],
        hourly,
        days,
        daily,
        _sorted(refused_48h),
        _sorted(refused_90d),
    )
    _disk(figures, day_index)
    if actor.is_provider and scope is None:
        _queue(figures, hours, index)
    return figures


def _sorted(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _disk(figures: Figures, day_index: dict[date, int]) -> None:
    """Per mailbox when one domain is looked at, else per domain; the biggest ones."""
    figures.disk_days = list(day_index)
    if figures.single:
        rows = DailyUsage.objects.filter(domain=figures.single).exclude(login="")
        key = "login"
        figures.disk_by = "mailbox"
    else:
        rows = DailyUsage.objects.filter(_within(figures.scope), login="")
        key = "domain"
    series: dict[str, list[int | None]] = {}
    for day, name, size in rows.filter(day__gte=figures.days[0]).values_list("day", key, "bytes"):
        series.setdefault(name, [None] * len(day_index))[day_index[day]] = size
    latest = {
        name: next((v for v in reversed(values) if v is not None), 0)
        for name, values in series.items()
    }
    biggest = sorted(series, key=lambda name: (-(latest[name] or 0), name))
    kept = {name: series[name] for name in biggest[:TOP]}
    if len(biggest) > TOP:
        others: list[int | None] = [None] * len(day_index)
        for name in biggest[TOP:]:
            for n, value in enumerate(series[name]):
                if value is not None:
                    others[n] = (others[n] or 0) + value
        kept[str(_("others"))] = others
    figures.disk = kept


def _last(values: list[int | None]) -> int:
    return next((v for v in reversed(values) if v is not None), 0)


def _queue(figures: Figures, hours: list[datetime], index: dict[datetime, int]) -> None:
    from courriel.outbound.spool import get_spool

    values = [0] * len(hours)
    for hour, size in HourlyCount.objects.filter(metric="queue", hour__gte=hours[0]).values_list(
        "hour", "count"
    ):
        position = index.get(hour.astimezone(UTC))
        if position is not None:
            values[position] = max(values[position], size)
    figures.queue_hours = values
    try:
        figures.queue_now = sum(1 for _ in get_spool().entries())
    except OSError:
        figures.queue_now = None
