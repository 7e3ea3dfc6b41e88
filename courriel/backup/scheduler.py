"""The daily backup inside `courriel serve` (the manual: early in the morning, when the
servers are quiet), at `[backup] time` in the server's time zone.

The backup runs in a worker thread so the mail services keep answering; stopping the
server interrupts it cleanly (the partial snapshot is removed, earlier ones stay).
Failures are reported through `courriel.backup.notify.report_failure`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from datetime import datetime, timedelta

from courriel.backup.policy import BackupPolicy, load_policy, local_now, time_zone
from courriel.config import Config
from courriel.errors import CourrielError

log = logging.getLogger("courriel.backup")


def next_run(policy: BackupPolicy, now: datetime) -> datetime:
    """The next moment at `policy.at` strictly after `now` (aware, server's zone)."""
    zone = now.tzinfo
    candidate = datetime.combine(now.date(), policy.at, tzinfo=zone)
    if candidate <= now:
        candidate = datetime.combine(now.date() + timedelta(days=1), policy.at, tzinfo=zone)
    return candidate


class BackupScheduler:
    name = "backup"

    def __init__(self, config: Config) -> None:
        self.policy = load_policy(config)
        self.listening = [
            f"backup: every day at {self.policy.at:%H:%M:%S} ({time_zone().key}) "
            f"into {self.policy.directory}"
        ]
        self.interrupt = threading.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        self.interrupt.set()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _loop(self) -> None:
        while True:
            target = next_run(self.policy, local_now())
            log.info("next backup at %s", target.isoformat(timespec="seconds"))
            # Sleep in short steps: a suspended machine or a clock change is noticed.
            while (left := (target - local_now()).total_seconds()) > 0:
                await asyncio.sleep(min(left, 30.0))
            await asyncio.shield(asyncio.to_thread(self.run_once))

    def run_once(self) -> None:
        from courriel.backup.notify import report_failure
        from courriel.backup.runner import run_backup

        try:
            run_backup(self.policy, trigger="schedule", interrupt=self.interrupt)
        except CourrielError:
            pass  # already reported by run_backup
        except Exception as error:  # never let the schedule die
            log.exception("scheduled backup crashed")
            report_failure(f"internal error during the scheduled backup: {error}")


def services(config: Config) -> list[BackupScheduler]:
    return [BackupScheduler(config)] if config.backup.enabled else []
