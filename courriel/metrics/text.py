"""The Prometheus text exposition format (version 0.0.4), which Prometheus, VictoriaMetrics,
Grafana Agent, Telegraf and friends all read."""

from __future__ import annotations

from collections.abc import Iterable

from courriel.metrics.figures import Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(text: str, quote: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quote else text


def _number(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value == int(value) else repr(value)


def render(metrics: Iterable[Metric]) -> str:
    """Samples grouped under one HELP and TYPE line per name, in first-seen order (the
    format requires a name's samples to be together)."""
    groups: dict[str, list[Metric]] = {}
    for metric in metrics:
        groups.setdefault(metric.name, []).append(metric)
    lines: list[str] = []
    for name, samples in groups.items():
        lines.append(f"# HELP {name} {_escape(samples[0].help, quote=False)}")
        lines.append(f"# TYPE {name} {samples[0].kind}")
        for sample in samples:
            labels = ",".join(
                f'{key}="{_escape(value, quote=True)}"' for key, value in sample.labels.items()
            )
            lines.append(
                f"{name}{{{labels}}} {_number(sample.value)}"
                if labels
                else f"{name} {_number(sample.value)}"
            )
    return "\n".join(lines) + "\n"
