"""Each node says how it is doing, every few seconds, in its `Node` row: what
`courriel status --all` and the provider's System Information show for every
server, whichever one they run on. A node whose last word is older than
`identity.ALIVE` is shown as not answering (within a minute of it going silent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from typing import Any

from django.utils import timezone

import courriel
from courriel.config import Config, get_config

log = logging.getLogger("courriel.cluster")
INTERVAL = 10.0


def listeners(config: Config) -> dict[str, str]:
    """The enabled listeners of this machine's configuration: `name: bind:port`."""
    from courriel.config import LISTENERS

    return {
        name: f"{getattr(config, name).bind}:{getattr(config, name).port}"
        for name in LISTENERS
        if getattr(config, name).enabled
    }


def local_status() -> dict[str, Any]:
    """This machine as `courriel status` describes it (no database access)."""
    from courriel.backup import status as backup_status
    from courriel.outbound.admin import figures

    config = get_config()
    disk = shutil.disk_usage(config.mail_root if config.mail_root.exists() else config.data_dir)
    last = backup_status.read() or {}
    return {
        "version": courriel.__version__,
        "hostname": config.hostname,
        "pid": os.getpid(),
        "services": listeners(config),
        "queue": figures().as_dict(),
        "disk": {"total": disk.total, "free": disk.free, "path": str(config.mail_root)},
        "last_backup": {
            "ok": last.get("ok"),
            "finished_at": last.get("finished_at"),
            "message": last.get("message", ""),
        }
        if last
        else None,
    }


def beat(config: Config) -> None:
    from courriel.cluster.identity import certificate_fingerprint, server_name
    from courriel.cluster.models import Node

    Node.objects.filter(server__name=server_name(config)).update(
        heartbeat_at=timezone.now(),
        status=local_status(),
        fingerprint=certificate_fingerprint(config),
    )


class Heartbeat:
    """Registers this node when `courriel serve` starts (before any other service,
    so a misconfigured node starts nothing), then beats until it stops."""

    name = "cluster"
    listening: list[str] = []

    def __init__(self, config: Config) -> None:
        self.config = config
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from courriel.cluster.identity import server_name
        from courriel.cluster.registry import register
        from courriel.dbthread import run_db

        await run_db(register, self.config)
        self.listening = [f"cluster: this is hosting server {server_name(self.config)}"]
        self.task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        from courriel.dbthread import run_db

        delay = 1.0  # the first beat once every service has started
        while True:
            await asyncio.sleep(delay)
            delay = INTERVAL
            try:
                await run_db(beat, self.config)
            except Exception as error:  # the database may be away for a while
                log.warning("cluster heartbeat not written: %s", error)

    async def stop(self) -> None:
        from courriel.cluster.identity import server_name
        from courriel.cluster.models import Node
        from courriel.dbthread import run_db

        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        with contextlib.suppress(Exception):
            await run_db(
                lambda: Node.objects.filter(server__name=server_name(self.config)).update(
                    stopped_at=timezone.now()
                )
            )
