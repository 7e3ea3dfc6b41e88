"""The queue runner: delivers due entries, retries with back-off, notifies senders.

Each attempt works on a fresh copy of the entry's envelope and rewrites it atomically
afterwards, so a crash at any point leaves either the old or the new state: at worst
a recipient gets a message twice, never zero times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict

from courriel.config import Config, get_config
from courriel.outbound import client, dsn
from courriel.outbound.spool import Entry, Recipient, Spool, get_spool
from courriel.outbound.transport import route_for
from courriel.units import parse_duration

log = logging.getLogger("courriel.mail")


def _seconds(text: str) -> float:
    return parse_duration(text).total_seconds()


def backoff(attempts: int) -> float:
    """Postfix-like: start at min_backoff, double each time, cap at max_backoff."""
    config = get_config().queue
    low, high = _seconds(config.min_backoff), _seconds(config.max_backoff)
    return min(high, low * (2 ** max(0, attempts - 1)))


def _deliver_local(entry: Entry, recipients: list[Recipient], message: bytes) -> None:
    """Mail for our own domains: straight into the mailbox (a copy that waited for
    room), or through the router like any incoming message."""
    from courriel.accounts.models import Mailbox
    from courriel.cluster.handoff import route_queued
    from courriel.delivery import quota
    from courriel.delivery.recipients import classify
    from courriel.delivery.replies import TemporaryFailure
    from courriel.delivery.router import Incoming, accept
    from courriel.mailstore.events import events
    from courriel.mailstore.maildir import deliver

    config = get_config()
    for recipient in recipients:
        if recipient.mailbox_id is not None and route_queued(entry, recipient, message):
            continue  # held by another hosting server: handed over to it
        if recipient.mailbox_id is not None:
            mailbox = (
                Mailbox.objects.select_related("domain").filter(pk=recipient.mailbox_id).first()
            )
            if mailbox is None:
                recipient.status, recipient.last_error = "failed", "550 5.1.1 Mailbox deleted"
            elif quota.has_room(mailbox, len(message)):
                deliver(quota.maildir_of(mailbox), message, folder=recipient.folder)
                events.notify(quota.maildir_of(mailbox))
                recipient.status, recipient.last_error = "sent", "250 2.0.0 delivered"
            else:
                recipient.last_error = "452 4.2.2 Mailbox full"
            continue
        classified = classify(recipient.address, may_relay=False)
        if classified.kind == "refused":
            assert classified.refusal is not None
            recipient.status, recipient.last_error = "failed", classified.refusal.reply()
            continue
        incoming = Incoming(
            sender=entry.sender,
            recipients=[recipient.address],
            resolutions=[classified.resolution],
            srs_returns={0: classified.srs_target} if classified.kind == "srs_return" else {},
            content=message,
            helo=config.hostname,
            protocol="local",
            queue_id=entry.id,
            defer_full_mailboxes=False,
        )
        try:
            outcome = accept(incoming)[0]
        except TemporaryFailure as failure:
            recipient.last_error = failure.outcome.reply()
            continue
        recipient.last_error = outcome.reply()
        if outcome.ok:
            recipient.status = "sent"
        elif outcome.code >= 500:
            recipient.status = "failed"


def attempt(spool: Spool, entry_id: str, now: float | None = None) -> Entry | None:
    """One delivery attempt of one entry (blocking; run in a worker thread)."""
    entry = spool.load(entry_id)
    if entry is None:
        return None
    now = time.time() if now is None else now
    config = get_config().queue
    try:
        message = spool.read_message(entry.id)
    except OSError as error:
        log.error("%s: message file unreadable (%s): entry dropped", entry.id, error)
        spool.remove(entry.id)
        return None
    before = [r.status for r in entry.recipients]
    by_domain: dict[str, list[Recipient]] = defaultdict(list)
    for recipient in entry.pending:
        domain = "" if recipient.mailbox_id else recipient.address.rpartition("@")[2].lower()
        by_domain[domain].append(recipient)
    for domain, recipients in by_domain.items():
        route = route_for(domain) if domain else None
        if route is None or route.kind == "local":
            _deliver_local(entry, recipients, message)
            continue
        if not route.hops:
            for recipient in recipients:
                recipient.last_error = f"451 4.4.3 {route.error}"
                if route.permanent:
                    recipient.status = "failed"
                    recipient.last_error = f"550 5.1.2 {route.error}"
            continue
        pending = [r.address for r in recipients]
        for hop in route.hops:
            results = client.send(hop, entry.sender, pending, message)
            for recipient in recipients:
                result = results.get(recipient.address)
                if result is None:
                    continue
                recipient.last_error = result.reply
                if result.status in {"sent", "failed"}:
                    recipient.status = result.status
            pending = [r.address for r in recipients if r.status == "pending"]
            # Try the next MX host only when this one could not be reached; a server
            # that answered (even 4xx) has spoken for the domain.
            answered = any(results[a].reply[:1] in "45" for a in pending if a in results)
            if not pending or answered:
                break
    entry.attempts += 1
    for recipient, old in zip(entry.recipients, before, strict=True):
        if old != "pending":
            continue
        recipient.attempts += 1
        log.info(
            "%s: from=<%s> to=<%s> status=%s reply=%s",
            entry.id,
            entry.sender,
            recipient.address,
            "deferred" if recipient.status == "pending" else recipient.status,
            recipient.last_error,
        )
    entry.last_error = next((r.last_error for r in entry.pending), "")
    expired = now - entry.created > _seconds(config.lifetime)
    if expired:
        for recipient in entry.pending:
            recipient.status = "failed"
            recipient.last_error = (
                f"{recipient.last_error or '450 4.4.7'} (gave up after {config.lifetime})"
            )
    failed = [r for r in entry.recipients if r.status == "failed" and not r.notified]
    if failed:
        dsn.notify(
            entry, message, [(r.address, r.original, r.last_error) for r in failed], action="failed"
        )
        for recipient in failed:
            recipient.notified = True
    if not entry.pending:
        spool.remove(entry.id)
        return entry
    if (
        not entry.delay_notified
        and now - entry.created > _seconds(config.delay_warning)
        and entry.kind not in {"bounce", "notice", "autoreply"}
    ):
        dsn.notify(
            entry,
            message,
            [(r.address, r.original, r.last_error) for r in entry.pending],
            action="delayed",
        )
        entry.delay_notified = True
    entry.next_attempt = now + backoff(entry.attempts)
    if not spool.save(entry):  # `courriel queue delete` took it meanwhile: it stays gone
        log.info("%s: deleted during the delivery attempt", entry.id)
    return entry


class QueueRunner:
    name = "queue"

    def __init__(self, config: Config, spool: Spool | None = None) -> None:
        self.config = config
        self.spool = spool or get_spool()
        self.listening = [f"queue: {self.spool.root}"]
        self.wake = asyncio.Event()
        self.in_flight: set[str] = set()
        self.task: asyncio.Task[None] | None = None
        self.slots = asyncio.Semaphore(config.queue.concurrency)
        self.workers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        from courriel.dbthread import run_db

        loop = asyncio.get_running_loop()
        self.spool.ensure()
        recovered = await asyncio.to_thread(self.spool.recover)
        if recovered:
            log.warning("queue: removed %d message files left by an interrupted write", recovered)
        self.spool.on_enqueue(lambda: loop.call_soon_threadsafe(self.wake.set))
        self._run_db = run_db
        self.task = asyncio.create_task(self._loop())

    def wake_up(self) -> None:
        self.wake.set()

    async def _loop(self) -> None:
        while True:
            self.wake.clear()
            now = time.time()
            entries = await asyncio.to_thread(lambda: list(self.spool.entries()))
            next_due = now + 30
            for entry in entries:
                if entry.id in self.in_flight:
                    continue
                if entry.next_attempt <= now:
                    self.in_flight.add(entry.id)
                    worker = asyncio.create_task(self._attempt(entry.id))
                    self.workers.add(worker)
                    worker.add_done_callback(self.workers.discard)
                else:
                    next_due = min(next_due, entry.next_attempt)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(0.05, next_due - time.time()))

    async def _attempt(self, entry_id: str) -> None:
        try:
            async with self.slots:
                await self._run_db(attempt, self.spool, entry_id)
        except Exception:
            log.exception("%s: delivery attempt failed unexpectedly; will retry", entry_id)
            entry = self.spool.load(entry_id)
            if entry is not None:
                entry.next_attempt = time.time() + backoff(entry.attempts + 1)
                with contextlib.suppress(OSError):
                    self.spool.save(entry)
        finally:
            self.in_flight.discard(entry_id)
            self.wake.set()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.workers:
            await asyncio.wait(self.workers, timeout=30)


def services(config: Config) -> list[QueueRunner]:
    return [QueueRunner(config)]
