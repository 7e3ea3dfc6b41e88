"""The SVG charts: well-formed, scaled to a round top, gaps where nothing was
measured, every text escaped, and the same figures in the table."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from courriel.stats.charts import HEIGHT, TOP, Series, bar_chart, line_chart, nice_ceiling

NS = "{http://www.w3.org/2000/svg}"


def test_round_tops() -> None:
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 7, 11, 180, 501, 9999)] == [
        1,
        0.5,
        1,
        10,
        20,
        200,
        1000,
        10000,
    ]


def test_a_line_chart_scales_its_points_and_leaves_gaps() -> None:
    chart = line_chart(
        key="k",
        title="Messages <per> hour",
        description="Last 4 hours: 10 received & more",
        x_labels=["a", "b", "c", "d"],
        series=[Series("Received", [0, 10, None, 5]), Series("Sent <x>", [1, 1, 1, 1])],
        tick_every=2,
        x_heading="Hour",
        least=1,
    )
    root = ET.fromstring(str(chart.svg))
    assert root.get("role") == "img" and root.get("aria-labelledby") == "k-title k-desc"
    assert root.find(f"{NS}title").text == "Messages <per> hour"  # type: ignore[union-attr]
    received, sent = (
        root.findall(f"{NS}g[@class='line series-0']"),
        root.findall(f"{NS}g[@class='line series-1']"),
    )
    pieces = received[0]
    # The gap splits the line: a two-point line, then a lone point drawn as a dot.
    assert [child.tag for child in pieces] == [f"{NS}polyline", f"{NS}circle"]
    points = pieces[0].get("points").split()  # type: ignore[union-attr]
    top_y = float(points[1].split(",")[1])
    assert top_y == TOP  # 10 is the axis' top
    assert float(pieces[1].get("cy")) == TOP + (HEIGHT - TOP - 30) / 2  # type: ignore[arg-type]
    assert len(sent) == 1
    assert chart.columns == ["Hour", "Received", "Sent <x>"]
    assert chart.rows[2] == ["c", "—", "1"]
    assert chart.legend == [("series-0", "Received"), ("series-1", "Sent <x>")]


def test_a_bar_chart_is_proportional() -> None:
    chart = bar_chart(
        key="r",
        title="Refused",
        description="3 reasons",
        bars=[("Spam", 50.0), ("Unknown recipient", 100.0), ("Loop", 0.0)],
    )
    root = ET.fromstring(str(chart.svg))
    widths = [float(rect.get("width")) for rect in root.iter(f"{NS}rect")]  # type: ignore[arg-type]
    assert widths[1] == 2 * widths[0] and widths[2] == 0
    assert chart.rows == [["Spam", "50"], ["Unknown recipient", "100"], ["Loop", "0"]]


def test_an_empty_chart_is_still_a_chart() -> None:
    chart = line_chart(key="e", title="t", description="d", x_labels=[], series=[], tick_every=1)
    ET.fromstring(str(chart.svg))
    assert chart.rows == []


def test_the_grid_falls_on_whole_numbers() -> None:
    chart = line_chart(
        key="g",
        title="t",
        description="d",
        x_labels=["a"],
        series=[Series("s", [1])],
        tick_every=1,
    )
    labels = [t.text for t in ET.fromstring(str(chart.svg)).iter(f"{NS}text")][:6]
    assert labels == ["0", "1", "2", "3", "4", "5"]
