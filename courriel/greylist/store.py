"""The database side of greylisting: point reads through Django, batched writes.

The engine never writes on the hot path: it changes its in-memory entries and this
store writes them in one transaction per flush (every second by default). Rows are
merged, not overwritten, because several hosting servers share the table: the
earliest first-seen and pass times and the latest last-seen win, and counters add up.
Raw SQL keeps a flush cheap: `executemany` on SQLite (in-process, a few microseconds a
row), one `INSERT ... SELECT FROM unnest(arrays)` on PostgreSQL (one round trip for a
whole flush); both speak `INSERT ... ON CONFLICT DO UPDATE`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import connections, transaction

from courriel.greylist.models import AutoWhitelist, DailyCount, Revision, Triplet

RULES_REVISION = "rules"

# id, client_net, sender, recipient, client_ip, first_seen, last_seen, passed_at,
# deferrals (added), passes (added)
TripletRow = tuple[int, str, str, str, str, float, float, float | None, int, int]
# network, passes (added), first_seen, last_seen, last_counted
NetworkRow = tuple[str, int, float, float, float]

COUNTERS = (
    "deferred",
    "passed_retry",
    "passed_known",
    "passed_whitelist",
    "passed_auto",
    "store_errors",
)


@dataclass(frozen=True)
class StoredTriplet:
    first_seen: float
    last_seen: float
    passed_at: float | None


def _table(model: type) -> str:
    return model._meta.db_table  # type: ignore[attr-defined]


_T = _table(Triplet)
_A = _table(AutoWhitelist)
_D = _table(DailyCount)
_COLUMNS = (
    "id, client_net, sender, recipient, client_ip, first_seen, last_seen, passed_at, "
    "deferrals, passes"
)
_TYPES = (
    "bigint",
    "varchar",
    "varchar",
    "varchar",
    "varchar",
    "float8",
    "float8",
    "float8",
    "integer",
    "integer",
)
# Another server may have written the same triplet: keep the earliest sighting.
_MERGE = (
    "ON CONFLICT (id) DO UPDATE SET "
    f"first_seen = CASE WHEN excluded.first_seen < {_T}.first_seen "
    f"THEN excluded.first_seen ELSE {_T}.first_seen END, "
    f"last_seen = CASE WHEN excluded.last_seen > {_T}.last_seen "
    f"THEN excluded.last_seen ELSE {_T}.last_seen END, "
    f"passed_at = CASE WHEN {_T}.passed_at IS NULL OR (excluded.passed_at IS NOT NULL "
    f"AND excluded.passed_at < {_T}.passed_at) THEN excluded.passed_at ELSE {_T}.passed_at END, "
    f"deferrals = {_T}.deferrals + excluded.deferrals, "
    f"passes = {_T}.passes + excluded.passes"
)
# The engine started the triplet afresh (it had expired): its values replace the row's.
_RESET = (
    "ON CONFLICT (id) DO UPDATE SET client_ip = excluded.client_ip, "
    "first_seen = excluded.first_seen, last_seen = excluded.last_seen, "
    "passed_at = excluded.passed_at, deferrals = excluded.deferrals, passes = excluded.passes"
)
_NETWORK_COLUMNS = "network, passes, first_seen, last_seen, last_counted"
_NETWORK_TYPES = ("varchar", "integer", "float8", "float8", "float8")
_MERGE_NETWORK = (
    "ON CONFLICT (network) DO UPDATE SET "
    f"passes = {_A}.passes + excluded.passes, "
    f"first_seen = CASE WHEN excluded.first_seen < {_A}.first_seen "
    f"THEN excluded.first_seen ELSE {_A}.first_seen END, "
    f"last_seen = CASE WHEN excluded.last_seen > {_A}.last_seen "
    f"THEN excluded.last_seen ELSE {_A}.last_seen END, "
    f"last_counted = CASE WHEN excluded.last_counted > {_A}.last_counted "
    f"THEN excluded.last_counted ELSE {_A}.last_counted END"
)


@dataclass(frozen=True)
class _Upsert:
    """One upsert, as `executemany` of VALUES rows (SQLite: in-process, cheap per row) or
    as one statement over arrays (PostgreSQL: one round trip and one plan for a whole
    flush, instead of one statement per row)."""

    table: str
    columns: str
    types: tuple[str, ...]
    conflict: str

    def run(self, cursor: Any, vendor: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if vendor == "postgresql":
            arrays = ", ".join(f"%s::{kind}[]" for kind in self.types)
            cursor.execute(
                f"INSERT INTO {self.table} ({self.columns}) SELECT * FROM unnest({arrays}) "
                + self.conflict,
                [list(column) for column in zip(*rows, strict=True)],
            )
        else:
            values = ", ".join(["%s"] * len(self.types))
            cursor.executemany(
                f"INSERT INTO {self.table} ({self.columns}) VALUES ({values}) " + self.conflict,
                rows,
            )


MERGE_TRIPLETS = _Upsert(_T, _COLUMNS, _TYPES, _MERGE)
RESET_TRIPLETS = _Upsert(_T, _COLUMNS, _TYPES, _RESET)
MERGE_NETWORKS = _Upsert(_A, _NETWORK_COLUMNS, _NETWORK_TYPES, _MERGE_NETWORK)
ADD_COUNTS = (
    f"INSERT INTO {_D} (day, host, {', '.join(COUNTERS)}) "
    f"VALUES (%s, %s, {', '.join(['%s'] * len(COUNTERS))}) "
    "ON CONFLICT (day, host) DO UPDATE SET "
    + ", ".join(f"{name} = {_D}.{name} + excluded.{name}" for name in COUNTERS)
)


TRIPLET_TABLE = _T
_SELECT = f"SELECT first_seen, last_seen, passed_at FROM {_T} WHERE id = %s"


class Store:
    """Greylisting rows in the database named by the Django alias `using`."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def prepare_writer(self) -> None:
        """Tune the connection of the thread that writes flushes (SQLite): a page cache
        large enough for the upper levels of million-row indexes, and a commit that
        does not wait for the disk (WAL keeps the file consistent; a power cut may lose
        the last flushes, which only means a few extra deferrals)."""
        if connections[self.using].vendor != "sqlite":
            return
        with self._cursor() as cursor:
            cursor.execute("PRAGMA cache_size = -65536")
            cursor.execute("PRAGMA synchronous = NORMAL")

    def in_transaction(self) -> bool:
        return connections[self.using].in_atomic_block

    def _cursor(self):  # type: ignore[no-untyped-def]
        return connections[self.using].cursor()

    def load(self, key: int) -> StoredTriplet | None:
        with self._cursor() as cursor:
            cursor.execute(_SELECT, [key])
            row = cursor.fetchone()
        return StoredTriplet(*row) if row else None

    def save(
        self,
        merged: Sequence[TripletRow],
        reset: Sequence[TripletRow],
        networks: Sequence[NetworkRow],
        counts: tuple[date, str, dict[str, int]] | None,
    ) -> None:
        """Write one flush in one transaction: all of it, or nothing (retried later)."""
        vendor = connections[self.using].vendor
        with transaction.atomic(using=self.using), self._cursor() as cursor:
            RESET_TRIPLETS.run(cursor, vendor, reset)
            MERGE_TRIPLETS.run(cursor, vendor, merged)
            MERGE_NETWORKS.run(cursor, vendor, networks)
            if counts is not None:
                day, host, values = counts
                cursor.execute(
                    ADD_COUNTS, [day.isoformat(), host, *(values.get(n, 0) for n in COUNTERS)]
                )

    def networks(self, seen_since: float = 0) -> list[tuple[str, int, float, float]]:
        """Auto-whitelist counters: network, passes, last_counted, last_seen."""
        with self._cursor() as cursor:
            cursor.execute(
                f"SELECT network, passes, last_counted, last_seen FROM {_A} WHERE last_seen >= %s",
                [seen_since],
            )
            return list(cursor.fetchall())

    def revision(self) -> int:
        with self._cursor() as cursor:
            cursor.execute(
                f"SELECT value FROM {_table(Revision)} WHERE name = %s", [RULES_REVISION]
            )
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    def purge(self, now: float, retry_window: float, expiry: float) -> tuple[int, int]:
        """Forget triplets never retried in time or unseen too long; returns the counts."""
        with transaction.atomic(using=self.using), self._cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {_T} WHERE (passed_at IS NULL AND first_seen < %s) OR last_seen < %s",
                [now - retry_window, now - expiry],
            )
            triplets = cursor.rowcount
            cursor.execute(f"DELETE FROM {_A} WHERE last_seen < %s", [now - expiry])
            networks = cursor.rowcount
        return triplets, networks

    def insert_many(self, rows: Iterable[TripletRow]) -> None:
        """Bulk load (benchmarks, migrations from another system)."""
        with transaction.atomic(using=self.using), self._cursor() as cursor:
            MERGE_TRIPLETS.run(cursor, "sqlite", list(rows))  # duplicates allowed


def bump_revision(using: str = "default") -> None:
    """Tell every running engine that whitelists or switches changed (call inside the
    transaction that changes them)."""
    from django.db.models import F

    updated = Revision.objects.using(using).filter(name=RULES_REVISION).update(value=F("value") + 1)
    if not updated:
        Revision.objects.using(using).get_or_create(name=RULES_REVISION, defaults={"value": 1})
