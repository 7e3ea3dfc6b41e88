"""Statistics: the provider's (every domain) and an owner's (their domains), as charts
drawn on the server with their figures in tables. The figures and who may see them
are `courriel.stats.figures`; this module only turns them into charts."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from courriel.accounts.models import Domain
from courriel.accounts.permissions import Actor, visible_domains
from courriel.errors import NotFoundError
from courriel.i18n import format_size
from courriel.panel.roles import domain_view, provider_only
from courriel.stats.charts import Chart, Series, bar_chart, line_chart
from courriel.stats.figures import Figures, statistics
from courriel.stats.reasons import REASONS

METRIC_LABELS = {
    "received": gettext_lazy("Received"),
    "delivered": gettext_lazy("Delivered"),
    "forwarded": gettext_lazy("Forwarded"),
    "refused": gettext_lazy("Refused"),
    "greylisted": gettext_lazy("Greylisted"),
    "sent": gettext_lazy("Sent"),
}


class ScopeForm(forms.Form):
    domain = forms.ChoiceField(label=gettext_lazy("Domain"), required=False)

    def __init__(self, *args: Any, names: list[str], everything: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["domain"].choices = [("", everything), *((n, n) for n in names)]  # type: ignore[attr-defined]

    def chosen(self) -> str | None:
        return (self.cleaned_data.get("domain") or None) if self.is_valid() else None


def _summary(totals: dict[str, int], when: str) -> str:
    return _(
        "%(when)s: %(received)s received, %(delivered)s delivered, %(forwarded)s "
        "forwarded, %(refused)s refused, %(greylisted)s greylisted, %(sent)s sent."
    ) % {"when": when, **totals}


def _count(value: float) -> str:
    return f"{int(value)}"


def _size(value: float) -> str:
    return format_size(int(value))


def charts(figures: Figures) -> list[Chart]:
    """The page's charts, in the order they are shown."""
    hours = [f"{h:%H}:00" for h in figures.hours]
    hour_rows = [date_format(h, "DATETIME_FORMAT") for h in figures.hours]
    day_ticks = [date_format(d, "MONTH_DAY_FORMAT") for d in figures.days]
    day_rows = [date_format(d, "DATE_FORMAT") for d in figures.days]
    last_48 = _("Last 48 hours")
    last_90 = _("Last 90 days")
    found = [
        _with_rows(
            line_chart(
                key="per-hour",
                title=_("Messages per hour, last 48 hours"),
                description=_summary(figures.totals("hour"), last_48),
                x_labels=hours,
                series=[Series(str(METRIC_LABELS[m]), v) for m, v in figures.hourly.items()],
                tick_every=6,
                x_heading=_("Hour"),
            ),
            hour_rows,
        ),
        _with_rows(
            line_chart(
                key="per-day",
                title=_("Messages per day, last 90 days"),
                description=_summary(figures.totals("day"), last_90),
                x_labels=day_ticks,
                series=[Series(str(METRIC_LABELS[m]), v) for m, v in figures.daily.items()],
                tick_every=15,
                x_heading=_("Day"),
            ),
            day_rows,
        ),
    ]
    for key, when, reasons in (
        ("refused-48h", last_48, figures.refused_48h),
        ("refused-90d", last_90, figures.refused_90d),
    ):
        bars = [
            (str(REASONS.get(reason, REASONS["other"])), float(n)) for reason, n in reasons.items()
        ]
        found.append(
            bar_chart(
                key=key,
                title=_("Refused mail by reason, %(when)s") % {"when": when.lower()},
                description=_("%(when)s: %(count)s messages refused.")
                % {"when": when, "count": sum(reasons.values())},
                bars=bars,
                headings=(_("Reason"), _("Refused")),
            )
        )
    if figures.disk:
        per_mailbox = figures.disk_by == "mailbox"
        found.append(
            _with_rows(
                line_chart(
                    key="disk",
                    title=_("Disk use per mailbox, last 90 days")
                    if per_mailbox
                    else _("Disk use per domain, last 90 days"),
                    description=_("The %(count)s biggest, measured once a day.")
                    % {"count": len(figures.disk)},
                    x_labels=day_ticks,
                    series=[Series(name, values) for name, values in figures.disk.items()],
                    tick_every=15,
                    fmt=_size,
                    x_heading=_("Day"),
                    least=1024**2,
                ),
                day_rows,
            )
        )
    if figures.queue_hours is not None:
        found.append(
            _with_rows(
                line_chart(
                    key="queue",
                    title=_("Messages waiting in the outbound queue, last 48 hours"),
                    description=_("The largest number of each hour; %(now)s waiting now.")
                    % {"now": figures.queue_now if figures.queue_now is not None else "?"},
                    x_labels=hours,
                    series=[Series(_("Waiting"), figures.queue_hours)],
                    tick_every=6,
                    x_heading=_("Hour"),
                ),
                hour_rows,
            )
        )
    return found


def _with_rows(chart: Chart, labels: list[str]) -> Chart:
    """The table beside the chart: full dates where the chart's ticks are short, and
    the newest first (what people look for)."""
    for row, label in zip(chart.rows, labels, strict=True):
        row[0] = label
    chart.rows.reverse()
    return chart


def _page(
    request: HttpRequest,
    actor: Actor,
    names: list[str],
    everything: str,
    family: list[str] | None,
    **context: Any,
) -> HttpResponse:
    """`family`: the domains of a domain's page (None: the provider's, every domain)."""
    form = ScopeForm(request.GET, names=names, everything=everything)
    chosen = form.chosen()
    try:
        figures = statistics(actor, chosen, family=family)
    except NotFoundError:
        raise Http404 from None
    return render(
        request,
        "panel/statistics.html",
        {
            "form": form,
            "figures": figures,
            "charts": charts(figures),
            "totals": [
                (METRIC_LABELS[m], figures.totals("hour")[m], figures.totals("day")[m])
                for m in METRIC_LABELS
            ],
            **context,
        },
    )


@provider_only
def provider_statistics(request: HttpRequest, actor: Actor) -> HttpResponse:
    names = list(Domain.objects.order_by("name").values_list("name", flat=True))
    return _page(request, actor, names, _("Every domain"), None)


@domain_view
def domain_statistics(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    top = domain.top
    names = list(
        visible_domains(actor)
        .filter(Q(pk=top.pk) | Q(parent_id=top.pk))
        .order_by("name")
        .values_list("name", flat=True)
    )
    return _page(
        request,
        actor,
        names,
        _("%(domain)s and its sub-servers") % {"domain": top.display_name},
        names,
        domain=domain,
    )
