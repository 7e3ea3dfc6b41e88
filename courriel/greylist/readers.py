"""Reading a triplet the engine has not seen, without stalling the event loop.

Handing a read to a thread costs more than the read itself in a busy asyncio
server: the answer waits for the thread to be scheduled and for the GIL to come
back (up to 5 ms), which is what a p99 latency measures. So:

- on SQLite, the read runs right on the event loop, on a connection of its own: a
  local file that writers never lock (WAL) answers in microseconds;
- on PostgreSQL, an asynchronous connection on the event loop reads it; the misses
  that arrive together go in one query (`id = ANY(...)`), one round trip for all.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from typing import Any

from django.db import connections

from courriel.greylist.store import TRIPLET_TABLE, StoredTriplet

_SELECT = f"SELECT first_seen, last_seen, passed_at FROM {TRIPLET_TABLE} WHERE id = ?"
_SELECT_ONE = f"SELECT id, first_seen, last_seen, passed_at FROM {TRIPLET_TABLE} WHERE id = %s"
_SELECT_MANY = (
    f"SELECT id, first_seen, last_seen, passed_at FROM {TRIPLET_TABLE} WHERE id = ANY(%s)"
)


class SQLiteReader:
    """Point reads on a connection per reading thread (usually just the event loop's)."""

    def __init__(self, name: str) -> None:
        self.uri = name if name.startswith("file:") else f"file:{name}"
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []

    def __call__(self, key: int) -> StoredTriplet | None:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.uri, uri=True, timeout=0.5, check_same_thread=False)
            # Keep the upper levels of a million-row index in memory (16 MiB).
            connection.execute("PRAGMA cache_size = -16384")
            self._local.connection = connection
            self._opened.append(connection)
        row = connection.execute(_SELECT, (key,)).fetchone()
        return StoredTriplet(*row) if row else None

    def close(self) -> None:
        self._local = threading.local()
        while self._opened:
            self._opened.pop().close()


class PostgresReader:
    """Batched asynchronous reads over one connection per event loop."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: Any = None
        self._cursor: Any = None
        self._pending: dict[int, list[asyncio.Future[StoredTriplet | None]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def load(self, key: int) -> StoredTriplet | None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a connection belongs to the loop that opened it
            self._loop, self._connection, self._cursor = loop, None, None
            self._pending, self._task = {}, None
        future: asyncio.Future[StoredTriplet | None] = loop.create_future()
        self._pending.setdefault(key, []).append(future)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        import psycopg

        while self._pending:
            batch, self._pending = self._pending, {}
            try:
                if self._connection is None or self._connection.closed:
                    self._connection = await psycopg.AsyncConnection.connect(
                        **self.params, autocommit=True
                    )
                    self._cursor = self._connection.cursor()
                cursor = self._cursor
                if len(batch) == 1:
                    await cursor.execute(_SELECT_ONE, (next(iter(batch)),), prepare=True)
                else:
                    await cursor.execute(_SELECT_MANY, (list(batch),), prepare=True)
                found = {row[0]: StoredTriplet(*row[1:]) for row in await cursor.fetchall()}
            except Exception as error:
                await self._drop_connection()
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(error)
                continue
            for key, futures in batch.items():
                for future in futures:
                    if not future.done():
                        future.set_result(found.get(key))

    async def _drop_connection(self) -> None:
        connection, self._connection, self._cursor = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def close(self) -> None:
        """Close this loop's connection (call it on the loop that used the reader)."""
        if self._loop is asyncio.get_running_loop():
            await self._drop_connection()


def readers_for(using: str) -> tuple[SQLiteReader | None, PostgresReader | None]:
    """The fast reader for the database behind the Django alias `using`."""
    settings = connections[using].settings_dict
    engine = settings["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        return SQLiteReader(str(settings["NAME"])), None
    if engine == "django.db.backends.postgresql":
        params = {
            "dbname": settings["NAME"],
            "user": settings["USER"] or None,
            "password": settings["PASSWORD"] or None,
            "host": settings["HOST"] or None,
            "port": settings["PORT"] or None,
            "connect_timeout": 5,
        }
        return None, PostgresReader({k: v for k, v in params.items() if v is not None})
    return None, None
