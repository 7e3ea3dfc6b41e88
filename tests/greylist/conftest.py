"""Greylisting test helpers: an injectable clock and engines built on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from courriel.greylist.engine import Engine, Verdict
from courriel.greylist.settings import Settings

START = 1_800_000_000.0  # 2027-01-15, a fixed "now" so that texts are predictable
HOST = "maximusconfessor.all2all.org"


class Clock:
    """`time.time` that only moves when the test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def settings(**overrides: object) -> Settings:
    return replace(Settings(delay=300, hostname=HOST, flush_interval=0.05), **overrides)


EngineFactory = Callable[..., Engine]


@pytest.fixture
def make_engine(clock: Clock) -> Iterator[EngineFactory]:
    """Engines on the test database; `background=False` unless asked (no threads)."""
    engines: list[Engine] = []

    def make(background: bool = False, store: object = None, **overrides: object) -> Engine:
        engine = Engine(
            settings(**overrides),
            store=store,  # type: ignore[arg-type]
            clock=clock,
            background=background,
        )
        engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def ask(
    engine: Engine,
    ip: str = "192.0.2.10",
    sender: str = "alice@example.org",
    recipient: str = "info@monsite.be",
    name: str | None = "unknown",
    **kwargs: object,
) -> Verdict:
    return engine.check_sync(
        client_ip=ip,
        client_name=name,
        sender=sender,
        recipient=recipient,
        **kwargs,  # type: ignore[arg-type]
    )
