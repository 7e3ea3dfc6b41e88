"""The work of a domain move, done by the target node's `courriel serve`.

1. copying: passes over the old node's live Maildirs (`tree`), fetching what is new
   or changed into a staging directory here, until a pass finds little to do. Mail
   keeps arriving there meanwhile; a cancel is honoured between batches.
2. switching: logins to the domain wait; the old node ends its sessions and sets the
   domain's directories aside as they are (`fence`); a last pass makes the staging
   copy identical to that frozen copy; the copy is flushed to disk and put in place,
   and the domain's home changes in one transaction.
3. draining: for `[cluster] move_grace` plus the longest routing cache of the
   nodes, mail the old node still delivered locally is handed on to us (`sweep`),
   under its own file name; then the old node deletes its frozen copy.

Every step is recorded in the `DomainMove` row before the next begins and each is
safe to do again, so a move killed at any point (SIGKILL included) resumes where it
was when this node starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

from django.db import close_old_connections, transaction
from django.db.models import F, Max
from django.utils import timezone

from courriel.cluster import rpc, tree
from courriel.cluster.models import DomainMove, Node
from courriel.cluster.moves import family_directories, family_domains
from courriel.cluster.placement import Peer, forget_peers, peer
from courriel.config import Config, get_config
from courriel.units import parse_duration

log = logging.getLogger("courriel.cluster")
STEADY_CHANGES = 50  # a copying pass with no more changes than this: time to switch
MAX_PASSES = 8
RETRY = 5.0  # seconds before trying again after a problem (the old node down...)


class Interrupted(Exception):
    """This node is stopping: the move goes on at its next start."""


class Cancelled(Exception):
    pass


def staging_root(move_id: int) -> Path:
    return get_config().mail_root / ".moving-in" / str(move_id)


class MoveRun:
    def __init__(self, move_id: int, stopping: threading.Event) -> None:
        self.move_id = move_id
        self.stopping = stopping
        self.staging = staging_root(move_id)
        self.started = time.monotonic()
        self.paced = 0
        move = self.load()
        self.directories = family_directories(move.domain)
        forget_peers()
        source = peer(move.source_id)
        if source is None:
            raise rpc.RpcError(f"{move.source.name} is not running as a node")
        self.source: Peer = source

    def load(self) -> DomainMove:
        return DomainMove.objects.select_related("domain", "source", "target").get(pk=self.move_id)

    def note(self, **fields: object) -> None:
        DomainMove.objects.filter(pk=self.move_id).update(updated_at=timezone.now(), **fields)

    def check(self, cancellable: bool) -> None:
        if self.stopping.is_set():
            raise Interrupted()
        if (
            cancellable
            and DomainMove.objects.filter(pk=self.move_id, cancel_requested=True).exists()
        ):
            raise Cancelled()

    def batch_bytes(self) -> int:
        """Batches of about a second's worth under a bandwidth limit (the progress and
        a cancel follow), else of up to 32 MiB."""
        from courriel.units import parse_size

        limit = parse_size(get_config().cluster.move_bandwidth)
        return max(64 << 10, min(32 << 20, limit)) if limit else 32 << 20

    def pace(self, size: int) -> None:
        """Keep under `[cluster] move_bandwidth` (bytes per second)."""
        from courriel.units import parse_size

        limit = parse_size(get_config().cluster.move_bandwidth)
        if limit:
            self.paced += size
            ahead = self.paced / limit - (time.monotonic() - self.started)
            if ahead > 0:
                self.stopping.wait(ahead)

    # -- passes --------------------------------------------------------------------------
    def sync(self, frozen: bool) -> int:
        """One pass: make the staging copy equal to the old node's; the changes made."""
        self.check(cancellable=not frozen)
        answer = rpc.call(self.source, f"moves/{self.move_id}/tree", {"frozen": frozen})
        remote = [tree.Item.of(row) for row in answer["items"]]
        self.staging.mkdir(mode=0o700, parents=True, exist_ok=True)
        work = tree.plan(remote, self.staging, self.directories)
        tree.apply_local(self.staging, work)
        files = [item for item in remote if item.size != tree.DIRECTORY]
        total_bytes = sum(item.size for item in files)
        missing = sum(item.size for item in work.fetch)
        done_files, done_bytes = len(files) - len(work.fetch), total_bytes - missing
        self.note(
            files_total=len(files),
            bytes_total=total_bytes,
            files_done=done_files,
            bytes_done=done_bytes,
            detail="",
        )
        for batch in tree.batches(work.fetch, max_bytes=self.batch_bytes()):
            self.check(cancellable=not frozen)
            wanted = {item.path for item in batch}
            response = rpc.open_call(
                self.source,
                f"moves/{self.move_id}/files",
                {"frozen": frozen, "paths": sorted(wanted)},
                timeout=300,
            )
            try:
                got_files, got_bytes = tree.receive_files(response, self.staging, wanted)
            finally:
                response.close()
            done_files += got_files
            done_bytes += got_bytes
            self.pace(got_bytes)
            self.note(files_done=done_files, bytes_done=min(done_bytes, total_bytes))
        tree.remove_extra_directories(self.staging, remote, self.directories)
        DomainMove.objects.filter(pk=self.move_id).update(passes=F("passes") + 1)
        return work.changes

    # -- the phases ----------------------------------------------------------------------
    def copy(self) -> None:
        for _ in range(MAX_PASSES):
            if self.sync(frozen=False) <= STEADY_CHANGES:
                break
        self.check(cancellable=True)
        switched = DomainMove.objects.filter(
            pk=self.move_id, state=DomainMove.COPYING, cancel_requested=False
        ).update(state=DomainMove.SWITCHING, updated_at=timezone.now())
        if not switched:
            raise Cancelled()

    def switch(self) -> None:
        move = self.load()
        root = get_config().mail_root
        self._take_back_installed(root)
        if not move.fenced:
            self.note(detail="freezing the old copy")
            rpc.call(self.source, f"moves/{self.move_id}/fence", {})
            self.note(fenced=True)
        while self.sync(frozen=True):
            pass  # the frozen copy does not change: a second pass finds nothing
        from courriel.delivery.journal import syncfs

        syncfs(self.staging)
        self._install(root)
        target = move.target_id
        with transaction.atomic():
            domains = [d.pk for d in family_domains(move.domain)]
            from courriel.accounts.models import Domain

            Domain.objects.filter(pk__in=domains).update(server_id=target)
            DomainMove.objects.filter(pk=self.move_id).update(
                state=DomainMove.DRAINING,
                switched_at=timezone.now(),
                updated_at=timezone.now(),
                detail="",
            )
            from courriel.accounts.permissions import Actor
            from courriel.audit.log import record

            record(
                Actor.system("cluster"),
                "domain.move.switched",
                move.domain.name,
                domain=move.domain.name,
                source=move.source.name,
                destination=move.target.name,
            )
        log.warning("move %s: %s now lives here", self.move_id, move.domain.name)

    def _install(self, root: Path) -> None:
        """Put the staging copy in place of the domain's directories here."""
        for directory in self.directories:
            staged = self.staging / directory
            if not staged.exists():
                continue
            target = root / directory
            if target.exists():
                # Left from an earlier stay of the domain here, or made by mistake:
                # kept aside with the deleted mailboxes, never mixed in.
                aside = (
                    get_config().data_dir
                    / "deleted"
                    / f"{int(time.time())}-before-move-{directory}"
                )
                aside.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.rename(target, aside)
                log.warning("move %s: %s was here already, kept in %s", self.move_id, target, aside)
            os.rename(staged, target)
        from courriel.mailstore.maildir import fsync_dir

        fsync_dir(root)

    def _take_back_installed(self, root: Path) -> None:
        """A switch interrupted between putting the copy in place and recording it:
        back into staging (the domain's mail is not read or written here until the
        switch is recorded), so the last pass checks it again."""
        if not self.staging.exists():
            return
        for directory in self.directories:
            if not (self.staging / directory).exists() and (root / directory).exists():
                os.rename(root / directory, self.staging / directory)

    def drain(self) -> None:
        move = self.load()
        assert move.switched_at is not None
        deadline = move.switched_at + grace()
        while True:
            self.check(cancellable=False)
            answer = rpc.call(self.source, f"moves/{self.move_id}/sweep", {})
            if answer["late"]:
                DomainMove.objects.filter(pk=self.move_id).update(
                    late_messages=F("late_messages") + int(answer["late"])
                )
            quiet = not answer["left"] and not answer["pending"]
            if quiet and timezone.now() >= deadline:
                break
            self.note(detail="waiting for late mail at the old server")
            self.stopping.wait(1.0)
        rpc.call(self.source, f"moves/{self.move_id}/finish", {})
        shutil.rmtree(self.staging, ignore_errors=True)
        self.note(state=DomainMove.DONE, finished_at=timezone.now(), detail="")
        log.warning("move %s: %s done", self.move_id, move.domain.name)

    def cancel(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        self.note(state=DomainMove.CANCELLED, finished_at=timezone.now(), detail="cancelled")
        log.warning("move %s cancelled; the copy made here is removed", self.move_id)

    def run(self) -> None:
        try:
            state = self.load().state
            if state == DomainMove.COPYING:
                self.copy()
                state = DomainMove.SWITCHING
            if state == DomainMove.SWITCHING:
                self.switch()
                state = DomainMove.DRAINING
            if state == DomainMove.DRAINING:
                self.drain()
        except Cancelled:
            self.cancel()


def grace() -> timedelta:
    """How long the old node may still deliver locally after a switch: the longest
    routing cache of the nodes plus `[cluster] move_grace`."""
    longest = Node.objects.aggregate(m=Max("routing_cache_seconds"))["m"] or 0
    return parse_duration(get_config().cluster.move_grace) + timedelta(seconds=max(0, longest))


def run_move(move_id: int, stopping: threading.Event) -> None:
    close_old_connections()
    try:
        MoveRun(move_id, stopping).run()
    except Interrupted:
        log.warning("move %s interrupted: it goes on at the next start", move_id)
    except (rpc.RpcError, OSError, ValueError, KeyError) as error:
        log.warning("move %s waits: %s", move_id, error)
        with contextlib.suppress(Exception):
            DomainMove.objects.filter(pk=move_id).update(
                detail=f"waiting: {error}"[:500], updated_at=timezone.now()
            )
    finally:
        close_old_connections()


def my_moves() -> list[int]:
    from courriel.cluster.identity import local_server_id

    here = local_server_id()
    return list(
        DomainMove.objects.filter(target_id=here, state__in=DomainMove.ACTIVE).values_list(
            "pk", flat=True
        )
    )


class Mover:
    """The moves to this node, run one at a time in a thread of their own; looked for
    every few seconds (a move asked anywhere starts within that)."""

    name = "cluster-moves"
    listening: list[str] = []

    def __init__(self, config: Config, interval: float = 2.0) -> None:
        self.interval = interval
        self.stopping = threading.Event()
        self.task: asyncio.Task[None] | None = None
        self.moving = False  # a move's thread is running

    async def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        from courriel.dbthread import run_db

        while not self.stopping.is_set():
            try:
                for move_id in await run_db(my_moves):
                    self.moving = True
                    try:
                        await asyncio.to_thread(run_move, move_id, self.stopping)
                    finally:
                        self.moving = False
                    if self.stopping.is_set():
                        return
            except Exception:
                log.exception("domain moves: unexpected error (will retry)")
                await asyncio.sleep(RETRY)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            if not self.moving:  # only waiting for the next look: nothing to finish
                self.task.cancel()
            # A running move stops at its next step (a batch of files at most).
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.task, 30)
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
