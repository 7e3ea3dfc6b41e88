"""`courriel.greylist.engine.check`, the call our SMTP server makes at RCPT time."""

from __future__ import annotations

import asyncio

import pytest

from courriel.greylist import engine as engine_module
from courriel.greylist.engine import Verdict, check
from courriel.greylist.models import Triplet
from tests.greylist.conftest import HOST, Clock, EngineFactory

pytestmark = pytest.mark.django_db(transaction=True)


def rcpt(n: int, **kwargs: object) -> object:
    return check(
        client_ip=f"192.0.{n}.10",
        client_name="",
        sender=f"sender{n}x@example.org",
        recipient="info@monsite.be",
        **kwargs,  # type: ignore[arg-type]
    )


def test_concurrent_sessions_never_wait_for_a_write(
    make_engine: EngineFactory, clock: Clock
) -> None:
    engine = make_engine(background=True, flush_interval=3600)
    previous = engine_module.set_engine(engine)
    try:

        async def run() -> tuple[list[Verdict], list[Verdict], list[Verdict]]:
            first = await asyncio.gather(*(rcpt(n) for n in range(60)))  # type: ignore[arg-type]
            clock.advance(301)
            retry = await asyncio.gather(*(rcpt(n) for n in range(60)))  # type: ignore[arg-type]
            later = await asyncio.gather(
                *(rcpt(n, now=clock.now + 10) for n in range(60))  # type: ignore[arg-type]
            )
            await engine.aclose()
            return first, retry, later

        first, retry, later = asyncio.run(run())
        assert all(v.action == "defer" for v in first)
        assert all(v.action == "pass" and v.header for v in retry)
        assert all((v.header or "").startswith("X-Greylist: delayed 301 seconds") for v in retry)
        assert all(v.action == "pass" and v.header is None for v in later)
        assert Triplet.objects.count() == 0  # decided from memory: nothing written yet
        engine.flush()
        assert Triplet.objects.filter(passes=2, deferrals=1).count() == 60
    finally:
        engine_module.set_engine(previous)


def test_engine_starts_on_first_use() -> None:
    previous = engine_module.set_engine(None)
    try:

        async def run() -> Verdict:
            verdict = await rcpt(1)  # type: ignore[misc]
            assert engine_module._engine is not None
            await engine_module._engine.aclose()
            return verdict

        verdict = asyncio.run(run())
        assert verdict.action == "defer" and "retry in 15 minutes" in verdict.text
        started = engine_module._engine
        assert started is not None and started.settings.hostname == HOST
    finally:
        started = engine_module.set_engine(previous)
        if started is not None:
            started.close()
