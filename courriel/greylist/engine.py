"""The greylisting engine: one decision per (client, sender, recipient) at RCPT time.

Used by our SMTP server (`await check(...)`) and by the Postfix policy service, with
the same state. The hot path never waits for a database write: decisions change
in-memory entries, which a background thread writes in batches (`flush`). A triplet
that is not in memory is read from the database once (in a worker thread, so the
event loop never blocks), then served from memory. Whitelists and switches are an
immutable snapshot (`Rules`), swapped whole when another process changes them.

Decisions follow RFC 6647 and postgrey: first sight of a triplet is deferred; a
retry before the delay is deferred again; a retry after the delay and within the
retry window passes, adds an `X-Greylist` header and makes the triplet trusted; a
trusted triplet unseen for `expiry` is forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import formatdate
from functools import lru_cache
from typing import Literal

import courriel
from courriel.greylist.normalise import (
    NULL_SENDER,
    SPF_PREFIX,
    client_network,
    normalise_recipient,
    normalise_sender,
    recipient_domain,
    spf_network,
    triplet_key,
)
from courriel.greylist.rdns import ConfirmedNames
from courriel.greylist.readers import PostgresReader, SQLiteReader, readers_for
from courriel.greylist.rules import Rules, load_rules, shipped_rules
from courriel.greylist.settings import Settings
from courriel.greylist.store import NetworkRow, Store, StoredTriplet, TripletRow
from courriel.networks import in_networks
from courriel.stats import counters

log = logging.getLogger("courriel.greylist")

Stage = Literal["rcpt", "data"]
MAX_UNSAVED_ROWS = 1_000_000  # kept for a later flush while the database is down
# A trusted triplet's last-seen time is written again only when it moved this much:
# it only matters for the 35-day expiry, and a write per message would be most writes.
LAST_SEEN_STEP = 3600.0
_URL_SAFE = re.compile(r"^[a-z0-9.-]+$")


@dataclass(frozen=True)
class Verdict:
    """The engine's answer. `defer` means SMTP `451 4.7.1 <text>`."""

    action: Literal["pass", "defer"]
    text: str  # reply text (without code) for defer; the reason for pass
    header: str | None = None  # "X-Greylist: ..." to add on the pass after a retry

    @property
    def deferred(self) -> bool:
        return self.action == "defer"


_KNOWN = Verdict("pass", "known triplet, trusted since it passed greylisting")


class _Entry:
    """A triplet in memory. `deferrals`/`passes` count what is not yet written;
    `stored_last` is the last-seen time the store has."""

    __slots__ = (
        "client_ip",
        "deferrals",
        "first",
        "last",
        "network",
        "passed",
        "passes",
        "recipient",
        "reset",
        "sender",
        "stored_last",
    )

    def __init__(
        self,
        network: str,
        sender: str,
        recipient: str,
        client_ip: str,
        first: float,
        last: float,
        passed: float | None,
    ) -> None:
        self.network = network
        self.sender = sender
        self.recipient = recipient
        self.client_ip = client_ip
        self.first = first
        self.last = last
        self.passed = passed
        self.deferrals = 0
        self.passes = 0
        self.reset = False  # started afresh: overwrite the stored row, do not merge
        self.stored_last = last


@dataclass(slots=True)
class Miss:
    """A triplet that must be read from the store before it can be judged."""

    key: int
    network: str
    sender: str
    recipient: str
    domain: str
    client_ip: str
    client_name: str
    raw_sender: str


def _human(seconds: int) -> str:
    if seconds < 120:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    if seconds < 2 * 3600:
        return f"{math.ceil(seconds / 60)} minutes"
    return f"{math.ceil(seconds / 3600)} hours"


@lru_cache(maxsize=1024)
def utc(timestamp: int) -> str:
    """Cached: every deferral in the same second says the same "after" time."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Engine:
    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        *,
        clock: Callable[[], float] = time.time,
        names: ConfirmedNames | None = None,
        background: bool = True,
    ) -> None:
        self.settings = settings
        self.store = store or Store()
        self.clock = clock
        self.names = names or ConfirmedNames(settings.dns_timeout)
        self.background = background
        self.rules: Rules = shipped_rules(settings.default_whitelist)
        self.revision: int | None = None
        self.totals: dict[str, int] = defaultdict(int)  # since start, for metrics
        self.last_flush_error: str = ""
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._cache: OrderedDict[int, _Entry] = OrderedDict()
        self._dirty: dict[int, _Entry] = {}
        # network -> [passes, last_counted, last_seen]
        self._networks: dict[str, list[float]] = {}
        # network -> [passes added, first_seen, last_seen, last_counted]
        self._networks_dirty: dict[str, list[float]] = {}
        self._networks_synced = 0.0
        self._counts: dict[str, int] = defaultdict(int)
        self._unsaved: list[tuple[list[TripletRow], list[TripletRow], list[NetworkRow], dict]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._inline: SQLiteReader | None = None
        self._async: PostgresReader | None = None
        self.started = False

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Read the rules and auto-whitelist, then start the background writer.
        Blocking (database reads): call it from a thread in async code."""
        self.reload(force=True)
        self._inline, self._async = readers_for(self.store.using)
        if self.background:
            if self._inline is None and self._async is None:  # another database engine
                self._readers = ThreadPoolExecutor(2, thread_name_prefix="greylist-read")
            self._thread = threading.Thread(
                target=self._run, name="greylist-maintenance", daemon=True
            )
            self._thread.start()
        self.started = True

    def close(self) -> None:
        """Stop the background work and write what is still in memory."""
        if self._inline is not None:
            self._inline.close()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:  # counters not written yet (deferrals ride with later changes)
            for key, entry in self._cache.items():
                if entry.deferrals or entry.passes:
                    self._dirty[key] = entry
        self.flush()
        if self._readers is not None:
            barrier = threading.Barrier(2)
            for _ in range(2):  # each reader thread closes its own connection
                self._readers.submit(_close_connections, barrier)
            self._readers.shutdown(wait=True)
            self._readers = None
        self.started = False

    def _run(self) -> None:
        from django.db import connections

        try:
            self.store.prepare_writer()
        except Exception as error:
            log.warning("cannot tune the greylist store connection: %s", error)
        next_reload = time.monotonic() + self.settings.reload_interval
        next_purge = time.monotonic() + min(60.0, self.settings.purge_interval)
        try:
            while not self._stop.wait(self.settings.flush_interval):
                try:
                    self.flush()
                    if time.monotonic() >= next_reload:
                        self.reload()
                        next_reload = time.monotonic() + self.settings.reload_interval
                    if time.monotonic() >= next_purge:
                        self.scheduled_purge()
                        next_purge = time.monotonic() + self.settings.purge_interval
                except Exception:  # keep the service alive whatever happens
                    log.exception("greylisting maintenance failed; trying again")
        finally:
            connections.close_all()

    # -- decisions -------------------------------------------------------------------------
    def evaluate(
        self,
        *,
        client_ip: str,
        client_name: str | None,
        sender: str,
        recipient: str,
        now: float,
        stage: Stage = "rcpt",
        spf_domain: str | None = None,
    ) -> Verdict | Miss:
        """Decide from memory, or say which triplet must be read from the store.

        `spf_domain`: the sender's domain when its SPF record authorises the client.
        The triplet is then keyed on the domain instead of the client's network (a
        retry from another server of the domain is the same sender), and a domain
        whose SPF-authorised mail passed greylisting once is not greylisted again."""
        settings = self.settings
        if not settings.enabled:
            return Verdict("pass", "greylisting is turned off on this server")
        if settings.trusted_networks and in_networks(client_ip, settings.trusted_networks):
            return Verdict("pass", "client in [smtp] trusted_networks")
        rules = self.rules
        recipient = normalise_recipient(recipient)
        domain = recipient_domain(recipient)
        login = rules.off_addresses.get(recipient)
        if login is not None:
            return self._whitelisted(f"greylisting is off for mailbox {login}")
        hosted = rules.off_domains.get(domain)
        if hosted is not None:
            return self._whitelisted(f"greylisting is off for {hosted}")
        normal_sender = normalise_sender(sender)
        if normal_sender == NULL_SENDER and stage == "rcpt":
            # Address-verification probes use the null sender and stop before DATA:
            # deferring them would make other sites refuse our own users' mail.
            return Verdict("pass", "null sender: greylisted after DATA, not at RCPT")
        name = "" if client_name in (None, "unknown") else client_name.lower()
        raw_sender = sender.strip().strip("<>").lower()
        rule = (
            rules.matcher.client(client_ip, name)
            or rules.matcher.sender(raw_sender)
            or rules.matcher.recipient(recipient)
        )
        if rule is not None:
            return self._whitelisted(f"whitelisted by {rule.describe()}")
        if spf_domain:
            network = spf_network(spf_domain)
            if self._auto_whitelisted(network, now, needed=1):
                return Verdict(
                    "pass", f"{spf_domain}: SPF-authorised mail passed greylisting before"
                )
        else:
            try:
                network = client_network(client_ip, settings.ipv4_prefix, settings.ipv6_prefix)
            except ValueError:
                log.warning("client address %r is not an IP address: passed", client_ip)
                return Verdict("pass", f"client address {client_ip!r} is not an IP address")
            if settings.auto_whitelist_after and self._auto_whitelisted(
                network, now, needed=settings.auto_whitelist_after
            ):
                return Verdict("pass", f"client network {network} is auto-whitelisted")
        key = triplet_key(network, normal_sender, recipient)
        miss = Miss(key, network, normal_sender, recipient, domain, client_ip, name, raw_sender)
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return miss
            self._cache.move_to_end(key)
            verdict = self._judge(miss, entry, now)
        return self._logged(verdict, miss)

    def settle(self, miss: Miss, stored: StoredTriplet | None, now: float) -> Verdict:
        """Judge a triplet once the store said what it knows about it."""
        with self._lock:
            entry = self._cache.get(miss.key)
            if entry is None and stored is not None:
                entry = _Entry(
                    miss.network,
                    miss.sender,
                    miss.recipient,
                    miss.client_ip,
                    stored.first_seen,
                    stored.last_seen,
                    stored.passed_at,
                )
                self._remember(miss.key, entry)
            verdict = self._judge(miss, entry, now)
        return self._logged(verdict, miss)

    def unavailable(self, miss: Miss, error: BaseException) -> Verdict:
        """The store could not be read: fail open (accept, log) or closed (4xx)."""
        with self._lock:
            self._bump("store_errors")
        if self.settings.fail_open:
            log.warning(
                "greylist store unavailable (%s): accepted %s -> %s from %s without greylisting",
                error,
                miss.raw_sender or "<>",
                miss.recipient,
                miss.client_ip,
            )
            return Verdict("pass", "greylisting store unavailable: accepted (fail-open)")
        log.warning(
            "greylist store unavailable (%s): deferred %s -> %s from %s (fail-closed)",
            error,
            miss.raw_sender or "<>",
            miss.recipient,
            miss.client_ip,
        )
        return Verdict("defer", "Greylisting temporarily unavailable, please retry later")

    def _whitelisted(self, reason: str) -> Verdict:
        with self._lock:
            self._bump("passed_whitelist")
        return Verdict("pass", reason)

    def _bump(self, counter: str) -> None:
        """Count an event (the caller holds the lock)."""
        self._counts[counter] += 1
        self.totals[counter] += 1

    def _auto_whitelisted(self, network: str, now: float, needed: int) -> bool:
        record = self._networks.get(network)
        if record is None or record[0] < needed:
            return False
        if now - record[2] > self.settings.expiry:
            return False
        with self._lock:
            if now - record[2] > LAST_SEEN_STEP:  # keep it from expiring, hourly
                self._network_changed(network, 0, now, record[1])
            record[2] = max(record[2], now)
            self._bump("passed_auto")
        return True

    def _network_changed(self, network: str, added: int, now: float, counted: float) -> None:
        dirty = self._networks_dirty.get(network)
        if dirty is None:
            self._networks_dirty[network] = [added, now, now, counted]
        else:
            dirty[0] += added
            dirty[2] = max(dirty[2], now)
            dirty[3] = max(dirty[3], counted)

    def _count_pass(self, network: str, now: float) -> None:
        """A triplet of `network` passed greylisting: count it toward auto-whitelisting,
        at most once per `auto_whitelist_interval`. An SPF-authorised sender domain
        counts whatever `auto_whitelist_after` says: one pass is enough for it."""
        if not self.settings.auto_whitelist_after and not network.startswith(SPF_PREFIX):
            return
        record = self._networks.setdefault(network, [0, 0.0, now])
        record[2] = max(record[2], now)
        if record[1] and now - record[1] < self.settings.auto_whitelist_interval:
            return  # counted recently: once per interval
        record[0] += 1
        record[1] = now
        self._network_changed(network, 1, now, now)
        if record[0] == self.settings.auto_whitelist_after:
            log.info("client network %s auto-whitelisted", network)

    def _remember(self, key: int, entry: _Entry) -> None:
        cache = self._cache
        cache[key] = entry
        for _ in range(len(cache) - self.settings.cache_size + 64):
            if len(cache) <= self.settings.cache_size:
                break
            oldest = next(iter(cache))
            held = cache[oldest]
            if oldest in self._dirty or held.deferrals or held.passes:
                self._dirty[oldest] = held  # write it first; evicted on a later pass
                cache.move_to_end(oldest)
                continue
            del cache[oldest]

    def _restart(self, key: int, miss: Miss, entry: _Entry | None, now: float) -> _Entry:
        if entry is None:
            entry = _Entry(
                miss.network, miss.sender, miss.recipient, miss.client_ip, now, now, None
            )
            self._remember(key, entry)
        else:
            entry.first = entry.last = now
            entry.passed = None
            entry.client_ip = miss.client_ip
            entry.passes = 0
            entry.reset = True
        entry.deferrals = 1
        self._dirty[key] = entry
        return entry

    def _judge(self, miss: Miss, entry: _Entry | None, now: float) -> Verdict:
        """The greylisting rule itself (the caller holds the lock)."""
        settings = self.settings
        delay = self.rules.delays.get(miss.domain, settings.delay)
        key = miss.key
        if entry is not None and entry.passed is not None:
            if now - entry.last <= settings.expiry:
                entry.last = max(entry.last, now)
                entry.passes += 1
                if entry.last - entry.stored_last > LAST_SEEN_STEP:
                    self._dirty[key] = entry
                self._bump("passed_known")
                return _KNOWN
            self._restart(key, miss, entry, now)  # trusted, but unseen too long
            return self._defer(delay, now, miss.domain)
        if entry is None or now - entry.first > settings.retry_window:
            self._restart(key, miss, entry, now)
            return self._defer(delay, now, miss.domain)
        age = max(0.0, now - entry.first)
        entry.last = max(entry.last, now)
        if age < delay:
            entry.deferrals += 1  # written with the next change that matters
            return self._defer(delay - age, now, miss.domain)
        self._dirty[key] = entry
        entry.passed = now
        entry.passes += 1
        self._bump("passed_retry")
        self._count_pass(miss.network, now)
        header = (
            f"X-Greylist: delayed {int(age)} seconds by Courriel-{courriel.__version__} "
            f"at {settings.hostname}; {formatdate(now, localtime=True)}"
        )
        return Verdict("pass", f"retried after {int(age)} seconds: triplet now trusted", header)

    def _defer(self, wait: float, now: float, domain: str) -> Verdict:
        self._bump("deferred")
        counters.count("greylisted", domain)
        seconds = max(1, math.ceil(wait))
        after = utc(int(now) + seconds)
        text = f"Greylisting in effect, please retry in {_human(seconds)} (after {after})"
        if self.settings.help_url:
            safe = domain if _URL_SAFE.match(domain) else ""
            text += f"; see {self.settings.help_url.replace('{domain}', safe)}"
        return Verdict("defer", text)

    def _logged(self, verdict: Verdict, miss: Miss) -> Verdict:
        """Each decision at DEBUG level only: at thousands per second, formatting log
        records would cost more than deciding (`courriel greylist lookup` and the
        store keep the per-triplet record)."""
        if (verdict.deferred or verdict.header) and log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s client=%s[%s] sender=%s recipient=%s: %s",
                "deferred" if verdict.deferred else "passed",
                miss.client_name or "unknown",
                miss.client_ip,
                miss.raw_sender or "<>",
                miss.recipient,
                verdict.text,
            )
        return verdict

    # -- the two ways in -------------------------------------------------------------------
    def check_sync(
        self,
        *,
        client_ip: str,
        client_name: str | None,
        sender: str,
        recipient: str,
        now: float | None = None,
        stage: Stage = "rcpt",
        spf_domain: str | None = None,
    ) -> Verdict:
        """Blocking variant (reads the store in the calling thread; no DNS look-up:
        pass the forward-confirmed client name, or None/"unknown")."""
        now = self.clock() if now is None else now
        outcome = self.evaluate(
            client_ip=client_ip,
            client_name=client_name,
            sender=sender,
            recipient=recipient,
            now=now,
            stage=stage,
            spf_domain=spf_domain,
        )
        if isinstance(outcome, Verdict):
            return outcome
        # Inside a transaction of this thread, only its own connection sees its writes.
        if not self.store.in_transaction():
            verdict = self.resolve_inline(outcome, now)
            if verdict is not None:
                return verdict
        try:
            stored = self.store.load(outcome.key)
        except Exception as error:
            return self.unavailable(outcome, error)
        return self.settle(outcome, stored, now)

    async def check(
        self,
        *,
        client_ip: str,
        client_name: str | None,
        sender: str,
        recipient: str,
        now: float | None = None,
        stage: Stage = "rcpt",
        spf_domain: str | None = None,
    ) -> Verdict:
        now = self.clock() if now is None else now
        if client_name is None and self.rules.matcher.needs_host_names:
            client_name = await self.names.name(client_ip)
        outcome = self.evaluate(
            client_ip=client_ip,
            client_name=client_name,
            sender=sender,
            recipient=recipient,
            now=now,
            stage=stage,
            spf_domain=spf_domain,
        )
        if isinstance(outcome, Verdict):
            return outcome
        return await self.resolve(outcome, now)

    def resolve_inline(self, miss: Miss, now: float) -> Verdict | None:
        """Read a missed triplet right here when the store allows it (SQLite)."""
        if self._inline is None:
            return None
        try:
            stored = self._inline(miss.key)
        except Exception as error:
            return self.unavailable(miss, error)
        return self.settle(miss, stored, now)

    async def resolve(self, miss: Miss, now: float) -> Verdict:
        """Read a missed triplet without blocking the event loop, then judge it."""
        verdict = self.resolve_inline(miss, now)
        if verdict is not None:
            return verdict
        try:
            if self._async is not None:
                stored = await self._async.load(miss.key)
            else:  # another database: a worker thread
                loop = asyncio.get_running_loop()
                stored = await loop.run_in_executor(self._readers, self.store.load, miss.key)
        except Exception as error:
            return self.unavailable(miss, error)
        return self.settle(miss, stored, now)

    async def aclose(self) -> None:
        """Close what the engine opened on the running event loop (call before `close`)."""
        if self._async is not None:
            await self._async.close()

    # -- maintenance -----------------------------------------------------------------------
    def flush(self) -> bool:
        """Write what changed in memory; on failure keep it for the next flush."""
        with self._flush_lock:
            with self._lock:
                dirty, self._dirty = self._dirty, {}
                merged: list[TripletRow] = []
                reset: list[TripletRow] = []
                for key, e in dirty.items():
                    row = (
                        key,
                        e.network,
                        e.sender,
                        e.recipient,
                        e.client_ip,
                        e.first,
                        e.last,
                        e.passed,
                        e.deferrals,
                        e.passes,
                    )
                    (reset if e.reset else merged).append(row)
                    e.deferrals = e.passes = 0
                    e.reset = False
                    e.stored_last = e.last
                networks = [(net, *values) for net, values in self._networks_dirty.items()]
                self._networks_dirty = {}
                counts = dict(self._counts)
                self._counts.clear()
            batches = [*self._unsaved, (merged, reset, networks, counts)]
            now = self.clock()
            for index, (m, r, n, c) in enumerate(batches):
                if not (m or r or n or c):
                    continue
                try:
                    day = date.fromtimestamp(now)
                    self.store.save(m, r, n, (day, self.settings.hostname, c) if c else None)
                except Exception as error:
                    self._keep_unsaved(batches[index:], error)
                    return False
            if self.last_flush_error:
                log.warning("greylist store available again: all changes written")
            self._unsaved = []
            self.last_flush_error = ""
            return True

    def _keep_unsaved(self, batches: list, error: BaseException) -> None:  # type: ignore[type-arg]
        if not self.last_flush_error:
            log.warning("cannot write to the store (%s); will retry", error)
        self.last_flush_error = str(error) or type(error).__name__
        self.totals["store_errors"] += 1
        while len(batches) > 1 and sum(len(b[0]) + len(b[1]) for b in batches) > MAX_UNSAVED_ROWS:
            dropped = batches.pop(0)
            log.error("dropped %d unsaved triplets", len(dropped[0]) + len(dropped[1]))
        self._unsaved = batches

    def reload(self, force: bool = False) -> bool:
        """Re-read the rules if they changed (or `force`), and the auto-whitelist."""
        try:
            revision = self.store.revision()
            if force or revision != self.revision:
                self.rules = load_rules(self.settings.default_whitelist, self.store.using)
                self.revision = revision
            self._sync_networks()
        except Exception as error:
            log.warning("cannot read the rules (%s); keeping the current ones", error)
            return False
        return True

    def _sync_networks(self) -> None:
        now = self.clock()
        since = self._networks_synced - 2 * self.settings.reload_interval
        rows = self.store.networks(max(0.0, since) if self._networks_synced else 0.0)
        with self._lock:
            for network, passes, last_counted, last_seen in rows:
                unsaved = self._networks_dirty.get(network)
                total = passes + (int(unsaved[0]) if unsaved else 0)
                record = self._networks.get(network)
                if record is None:
                    self._networks[network] = [total, last_counted, last_seen]
                else:
                    record[0] = max(record[0], total)
                    record[1] = max(record[1], last_counted)
                    record[2] = max(record[2], last_seen)
        self._networks_synced = now

    def scheduled_purge(self) -> None:
        """The periodic purge, done by one hosting server per interval when several
        share the database (courriel.cluster.once); the others only drop from memory
        what expired."""
        from courriel.cluster.once import claim

        now = self.clock()
        try:
            mine = claim("greylist-purge", str(int(now // self.settings.purge_interval)))
        except Exception as error:
            log.warning("purge not claimed (%s); will retry", error)
            return
        if mine:
            self.purge(now)
        else:
            self._forget_networks(now)

    def purge(self, now: float | None = None) -> tuple[int, int] | None:
        """Delete expired triplets and networks from the store (and from memory)."""
        now = self.clock() if now is None else now
        try:
            triplets, networks = self.store.purge(
                now, self.settings.retry_window, self.settings.expiry
            )
        except Exception as error:
            log.warning("purge failed (%s); will retry", error)
            return None
        self._forget_networks(now)
        if triplets or networks:
            log.info("purged %d triplets and %d client networks", triplets, networks)
        return triplets, networks

    def _forget_networks(self, now: float) -> None:
        horizon = now - self.settings.expiry
        with self._lock:
            for network in [n for n, r in self._networks.items() if r[2] < horizon]:
                del self._networks[network]

    # -- figures ---------------------------------------------------------------------------
    def memory_figures(self) -> dict[str, int]:
        with self._lock:
            return {
                "cached_triplets": len(self._cache),
                "unwritten_triplets": len(self._dirty)
                + sum(len(b[0]) + len(b[1]) for b in self._unsaved),
                "known_networks": len(self._networks),
            }


def _close_connections(barrier: threading.Barrier) -> None:
    from django.db import connections

    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=5)
    connections.close_all()


# -- the process-wide engine ----------------------------------------------------------------
_engine: Engine | None = None
_engine_lock = threading.Lock()


def get_engine() -> Engine:
    """The engine of this process, started on first use (blocking: reads the rules)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            engine = Engine(Settings.from_config())
            engine.start()
            _engine = engine
        return _engine


def turned_off() -> bool:
    """Whether this process's engine is running with greylisting turned off (then
    every check passes: the SMTP server need not ask)."""
    engine = _engine
    return engine is not None and not engine.settings.enabled


def set_engine(engine: Engine | None) -> Engine | None:
    """Install (or remove) the process-wide engine; returns the previous one."""
    global _engine
    with _engine_lock:
        previous, _engine = _engine, engine
    return previous


async def check(
    *,
    client_ip: str,
    client_name: str | None,
    sender: str,
    recipient: str,
    now: float | None = None,
    stage: Stage = "rcpt",
    spf_domain: str | None = None,
) -> Verdict:
    """Greylisting decision for one recipient, for the SMTP server at RCPT time.

    `client_name`: the client's forward-confirmed host name, "" or "unknown" when it
    has none, or None to let the engine look it up (only when host-name whitelists
    exist). `sender` "" is the null sender: it passes at `stage="rcpt"` and is judged
    at `stage="data"` (call again after DATA for such messages).
    """
    engine = _engine or await asyncio.to_thread(get_engine)
    return await engine.check(
        client_ip=client_ip,
        client_name=client_name,
        sender=sender,
        recipient=recipient,
        now=now,
        stage=stage,
        spf_domain=spf_domain,
    )
