"""Mail left on a hosting server for a domain that lives elsewhere now: handed to the
domain's home through the queue, under its own file name (stored there once), then
removed here.

After a domain moves, the old server may still write a few messages into its old
Maildirs: a delivery decided from a routing cache that had not seen the switch yet,
a journal replayed after a crash. The move's last phase sweeps them while it waits
for such stragglers, and every node sweeps again now and then, so that nothing stays
behind and nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from courriel.cluster.handoff import enqueue_copy
from courriel.cluster.placement import is_here
from courriel.config import get_config

log = logging.getLogger("courriel.cluster")


def _header(data: bytes, name: bytes) -> str:
    head = data[: data.find(b"\r\n\r\n") if b"\r\n\r\n" in data else 8192]
    for line in head.split(b"\r\n"):
        if line[: len(name) + 1].lower() == name.lower() + b":":
            value = line[len(name) + 1 :].strip().decode("utf-8", "replace")
            return value.strip("<>")
    return ""


def _split(relative: str) -> tuple[str, str] | None:
    """('<dir>/homes/<login>/Maildir', folder) of a message file's path."""
    maildir, sep, rest = relative.partition("/Maildir/")
    parts = rest.split("/")
    if not sep or len(parts) not in (2, 3) or parts[-2] not in {"cur", "new"}:
        return None
    folder = ""
    if len(parts) == 3:
        if not parts[0].startswith("."):
            return None
        folder = parts[0][1:].replace(".", "/")
    return maildir + "/Maildir", folder


def sweep_directory(directory: str) -> tuple[int, bool]:
    """Hand every message under `<mail root>/<directory>` on to its mailbox's home
    and remove the directory; (messages handed on, directory still there)."""
    from courriel.accounts.models import Mailbox

    config = get_config()
    root = config.mail_root
    base = root / directory
    if not base.is_dir():
        return 0, False
    handed = 0
    mailboxes: dict[str, Mailbox | None] = {}
    kept = False
    for current, _dirs, files in os.walk(base):
        for name in files:
            path = Path(current) / name
            relative = str(path.relative_to(root))
            place = _split(relative)
            if place is None:
                continue
            maildir, folder = place
            if maildir not in mailboxes:
                mailboxes[maildir] = (
                    Mailbox.objects.select_related("domain").filter(maildir=maildir).first()
                )
            mailbox = mailboxes[maildir]
            if mailbox is None or is_here(mailbox.domain.server_id):
                kept = True  # a deleted mailbox's mail, or a domain that is here after all
                continue
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            address = _header(data, b"Delivered-To") or mailbox.login
            enqueue_copy(
                _header(data, b"Return-Path"),
                address,
                mailbox,
                [data],
                folder=folder,
                name=name.partition(":2,")[0],
                note=f"late mail for {mailbox.login} left on this server after a move",
            )
            path.unlink()
            handed += 1
    if handed:
        log.warning("%s: %d late message(s) handed to the domain's new server", directory, handed)
    if not kept:
        _clear(base)
    return handed, base.exists()


def _clear(base: Path) -> None:
    """Remove what is left, except messages: a delivery may land while we look (its
    file keeps its directory, for the next sweep) and a file in `tmp/` is one being
    written. Indexes, uidlists and quota files go; empty directories go."""
    for current, dirs, files in os.walk(base, topdown=False):
        here = Path(current)
        if here.name not in {"cur", "new", "tmp"}:
            for name in files:
                with contextlib.suppress(OSError):
                    (here / name).unlink()
        for name in dirs:
            with contextlib.suppress(OSError):
                (here / name).rmdir()
    with contextlib.suppress(OSError):
        base.rmdir()


def stray_directories() -> list[str]:
    """Top-level directories of the mail root whose domain lives on another node and
    is not being moved (a move sweeps its own)."""
    from courriel.accounts.models import Domain
    from courriel.cluster.models import DomainMove

    root = get_config().mail_root
    try:
        names = [e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")]
    except FileNotFoundError:
        return []
    found = []
    for domain in Domain.objects.filter(name__in=names).select_related("parent"):
        if is_here(domain.server_id):
            continue
        if DomainMove.objects.filter(domain=domain.top, state__in=DomainMove.ACTIVE).exists():
            continue
        found.append(domain.name)
    return found


def sweep_strays() -> int:
    handed = 0
    for directory in stray_directories():
        handed += sweep_directory(directory)[0]
    return handed


class Sweeper:
    """Every node, now and then: its pending chores (see chores.py; at once at start,
    then every `chores_interval`) and late mail of domains that moved away (above)."""

    name = "cluster-sweep"
    listening: list[str] = []

    def __init__(
        self, interval: float = 300.0, first: float = 60.0, chores_interval: float = 30.0
    ) -> None:
        self.interval = interval
        self.first = first
        self.chores_interval = chores_interval
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        from courriel.cluster.chores import run_chores

        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + self.first
        while True:
            await self._run(run_chores, "chores")
            if loop.time() >= next_sweep:
                await self._run(sweep_strays, "sweep of moved domains' mail")
                next_sweep = loop.time() + self.interval
            await asyncio.sleep(self.chores_interval)

    @staticmethod
    async def _run(work: Callable[[], int], what: str) -> None:
        from courriel.dbthread import run_db

        try:
            await run_db(work)
        except Exception:
            log.exception("cluster %s failed (will retry)", what)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
