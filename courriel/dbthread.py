"""Running database work from asyncio servers: in a worker thread, with the thread's
Django connection checked first (a connection broken by a database restart is
replaced instead of failing every later request)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import DatabaseError, close_old_connections, connection

P = ParamSpec("P")
R = TypeVar("R")


def _call(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    except DatabaseError:
        connection.close()
        raise


async def run_db(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    return await asyncio.to_thread(_call, fn, *args, **kwargs)
