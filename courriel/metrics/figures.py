"""One figure, and the capabilities that have figures to give.

A capability adds its figures by adding its function to `COLLECTORS`: a callable that
takes no argument and returns `Metric`s (e.g. `courriel.greylist.services.metrics`).
Names follow Prometheus' conventions: `courriel_<capability>_<what>`, counters end
in `_total`, labels for the dimensions (`host`, `result`...).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from importlib import import_module
from typing import Literal

from pydantic import BaseModel

logger = logging.getLogger(__name__)

# "module:function" of every capability's figures; add yours here.
COLLECTORS: tuple[str, ...] = ("courriel.greylist.services:metrics",)


class Metric(BaseModel):
    name: str
    help: str
    kind: Literal["counter", "gauge"]
    value: float
    labels: dict[str, str] = {}


Collector = Callable[[], Iterable[Metric]]


def _load(path: str) -> Collector:
    module, _, function = path.partition(":")
    return getattr(import_module(module), function)  # type: ignore[no-any-return]


def collect(collectors: Iterable[str] = COLLECTORS) -> Iterator[Metric]:
    """Every capability's figures. One that fails is reported as down (with
    `courriel_metrics_collector_up 0`) instead of costing the others theirs."""
    for path in collectors:
        name = path.partition(":")[0].removeprefix("courriel.").partition(".")[0]
        try:
            figures = list(_load(path)())
        except Exception:  # a broken collector must not hide the others' figures
            logger.exception("metrics collector %s failed", path)
            figures = []
            up = 0.0
        else:
            up = 1.0
        yield from figures
        yield Metric(
            name="courriel_metrics_collector_up",
            help="1 when this capability's figures could be read, 0 when they failed.",
            kind="gauge",
            value=up,
            labels={"collector": name},
        )
