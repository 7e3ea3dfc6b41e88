"""Login throttling shared by every door (panel, API, IMAP, POP3, SMTP AUTH).

Failed sign-ins are counted per account and per client IP over a sliding window;
past the limit, further attempts are refused until the window has moved on, without
even checking the password (so guessing costs the attacker time, not us CPU). A
success clears the account's counter. Counters live in this process: `courriel serve`
runs every door in one process, so they see each other's failures.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    per_account: int = 5  # failures of one login...
    per_ip: int = 20  # ...or from one address...
    window: float = 15 * 60  # ...within this many seconds


class LoginThrottle:
    def __init__(
        self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or Limits()
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _keys(self, account: str, ip: str) -> list[tuple[str, int]]:
        keys = []
        if account:
            keys.append((f"account:{account.strip().lower()}", self.limits.per_account))
        if ip:
            keys.append((f"ip:{ip}", self.limits.per_ip))
        return keys

    def _prune(self, key: str, now: float) -> deque[float]:
        entries = self._failures[key]
        while entries and entries[0] <= now - self.limits.window:
            entries.popleft()
        return entries

    def retry_after(self, account: str, ip: str) -> int:
        """Seconds to wait before another attempt may be checked (0: go ahead)."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key, limit in self._keys(account, ip):
                entries = self._prune(key, now)
                if len(entries) >= limit:
                    wait = max(wait, entries[0] + self.limits.window - now)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, account: str, ip: str) -> None:
        now = self._clock()
        with self._lock:
            for key, _limit in self._keys(account, ip):
                self._prune(key, now).append(now)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._failures.pop(f"account:{account.strip().lower()}", None)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()


throttle = LoginThrottle()
