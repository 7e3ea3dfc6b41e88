"""A job `courriel serve` runs every few minutes on the database thread (the
statistics' samples, the failed sign-in reports): the loop, its logging of a failed
round and its clean stop, written once."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger("courriel.periodic")


class PeriodicJob:
    """Calls `run_once` every `interval` seconds, the first time at start. A failed
    round is logged (`failure`) and tried again at the next one: the server goes on."""

    name = "periodic"
    failure = "a periodic job failed (will retry)"

    def __init__(self, interval: float = 300.0) -> None:
        self.interval = interval
        self.listening: list[str] = []
        self.task: asyncio.Task[None] | None = None

    def run_once(self) -> object:
        raise NotImplementedError

    async def _loop(self) -> None:
        from courriel.dbthread import run_db

        while True:
            try:
                await run_db(self.run_once)
            except Exception:
                log.exception(self.failure)
            await asyncio.sleep(self.interval)

    async def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
