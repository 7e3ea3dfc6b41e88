"""Blocking work run on the event loop when every answer it needs is already cached.

The incoming checks (SPF, DKIM, DMARC) are blocking code (pyspf, dkimpy) that asks
the DNS resolver and the routing cache. Once those answers are cached, the checks
are some 0.1 ms of CPU, while the trip to a worker thread costs more than that and,
worse, waits behind the deliveries that hold the executor's threads (measured at
1.2 ms per message with 8 sessions). So they are first tried inline, in "cached
only" mode: any look-up that would have to go to the network or the database
records a miss and raises `NotCached` instead. A single miss — even one a library
caught and turned into a result of its own — throws the inline result away, and the
same function runs again in a worker thread, where it may wait for the network.
Either way the function sees the same answers, so it gives the same result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from courriel.dbthread import run_db

P = ParamSpec("P")
R = TypeVar("R")


class NotCached(Exception):
    """An answer that is not cached was asked for in cached-only mode."""


class _State(threading.local):
    active = False
    missed = False


_state = _State()


def active() -> bool:
    """Whether this thread runs in cached-only mode (callers must not block)."""
    return _state.active


def miss(what: str) -> NotCached:
    """Record that `what` is not cached; the exception for the caller to raise."""
    _state.missed = True
    return NotCached(what)


def attempt(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> tuple[bool, R | None]:
    """(True, result) if `fn` ran with cached answers only, else (False, None)."""
    if _state.active:  # nested: the outer attempt decides
        return True, fn(*args, **kwargs)
    _state.active, _state.missed = True, False
    try:
        result = fn(*args, **kwargs)
    except Exception:
        if _state.missed:  # whatever a library made of the miss: run it again
            return False, None
        raise
    finally:
        missed = _state.missed
        _state.active = _state.missed = False
    if missed:
        return False, None
    return True, result


async def cached_or_thread(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`fn(*args, **kwargs)` inline when its answers are cached, else in a worker
    thread (`run_db`: it may then query the database and the network)."""
    done, result = attempt(fn, *args, **kwargs)
    if done:
        return result  # type: ignore[return-value]
    return await run_db(fn, *args, **kwargs)
