"""Charts drawn on the server as SVG: no script, no CDN, readable without colour.

Each chart is an `<svg role="img">` with a title and a one-sentence description for
screen readers, a legend in HTML, and the same figures as a table beside it (the
page shows both). Series are told apart by colour (a palette that colour-blind
readers can tell apart, Okabe and Ito's) and by line pattern, both set in the style
sheet through the `series-N` classes, so the SVG has no style attribute (the panel's
Content-Security-Policy forbids them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 84, 12, 12, 30
SERIES_CLASSES = 8  # the style sheet's series-0 ... series-7


@dataclass
class Series:
    label: str
    values: Sequence[float | None]


@dataclass
class Chart:
    """What a page shows for one chart: the SVG, its legend and its table."""

    key: str  # unique on the page: the ids of the title and description
    title: str
    description: str
    svg: SafeString
    legend: list[tuple[str, str]]  # (css class, label)
    columns: list[str]  # the table's header: first the x column, then one per series
    rows: list[list[str]] = field(default_factory=list)


def nice_ceiling(value: float) -> float:
    """The next 1, 2 or 5 times a power of ten: the top of the y axis."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def intervals(top: float) -> int:
    """Grid lines that fall on round values: 0-20 in fours (5, 10...), else in fives."""
    leading = round(top / 10 ** math.floor(math.log10(top)))
    return 4 if leading == 2 else 5


def line_chart(
    *,
    key: str,
    title: str,
    description: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    tick_every: int,
    fmt: Callable[[float], str] = lambda v: f"{int(v)}",
    x_heading: str = "",
    least: float = 5,
) -> Chart:
    """One line per series over the x labels (hours or days); None leaves a gap.
    `least`: the smallest top of the y axis (5 messages: whole numbers on the grid)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    count = max(len(x_labels), 1)
    highest = max((v for s in series for v in s.values if v is not None), default=0)
    top = nice_ceiling(max(float(highest), least))
    steps = intervals(top)

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * v / top

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{key}-title {key}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{key}-title">{escape(title)}</title>',
        f'<desc id="{key}-desc">{escape(description)}</desc>',
        '<g class="grid" aria-hidden="true">',
    ]
    for step in range(steps + 1):
        value = top * step / steps
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>'
            f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
            f"{escape(fmt(value))}</text>"
        )
    for i, label in enumerate(x_labels):
        if i % tick_every == 0:
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</g>")
    for n, line in enumerate(series):
        css = f"series-{n % SERIES_CLASSES}"
        segments: list[list[str]] = [[]]
        for i, value in enumerate(line.values):
            if value is None:
                segments.append([])
            else:
                segments[-1].append(f"{x(i):.1f},{y(value):.1f}")
        parts.append(f'<g class="line {css}" aria-hidden="true">')
        for points in segments:
            if len(points) == 1:
                cx, cy = points[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5"/>')
            elif points:
                parts.append(f'<polyline points="{" ".join(points)}"/>')
        parts.append("</g>")
    parts.append("</svg>")
    rows = [
        [label, *(("—" if s.values[i] is None else fmt(s.values[i])) for s in series)]  # type: ignore[arg-type]
        for i, label in enumerate(x_labels)
    ]
    return Chart(
        key=key,
        title=title,
        description=description,
        svg=mark_safe("".join(parts)),
        legend=[(f"series-{n % SERIES_CLASSES}", s.label) for n, s in enumerate(series)],
        columns=[x_heading, *(s.label for s in series)],
        rows=rows,
    )


def bar_chart(
    *,
    key: str,
    title: str,
    description: str,
    bars: Sequence[tuple[str, float]],
    fmt: Callable[[float], str] = lambda v: f"{int(v)}",
    headings: tuple[str, str] = ("", ""),
) -> Chart:
    """Horizontal bars, one per label (refusals by reason)."""
    row_h, label_w = 26, 300
    height = max(len(bars), 1) * row_h + 8
    plot_w = WIDTH - label_w - 70
    top = nice_ceiling(max((v for _label, v in bars), default=0))
    parts = [
        f'<svg class="chart bars" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{key}-title {key}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{key}-title">{escape(title)}</title>',
        f'<desc id="{key}-desc">{escape(description)}</desc>',
        '<g aria-hidden="true">',
    ]
    for n, (label, value) in enumerate(bars):
        y = 4 + n * row_h
        width = plot_w * value / top
        parts.append(
            f'<text class="label" x="{label_w - 8}" y="{y + 17}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect class="series-{n % SERIES_CLASSES}" x="{label_w}" y="{y + 4}" '
            f'width="{width:.1f}" height="{row_h - 8}"/>'
            f'<text x="{label_w + width + 6:.1f}" y="{y + 17}">{escape(fmt(value))}</text>'
        )
    parts.append("</g></svg>")
    return Chart(
        key=key,
        title=title,
        description=description,
        svg=mark_safe("".join(parts)),
        legend=[],
        columns=list(headings),
        rows=[[label, fmt(value)] for label, value in bars],
    )
