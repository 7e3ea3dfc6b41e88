"""Login throttling per account and per IP, with an injected clock."""

from __future__ import annotations

from courriel.accounts.throttle import Limits, LoginThrottle


def test_account_and_ip_limits_and_window() -> None:
    now = [1000.0]
    throttle = LoginThrottle(Limits(per_account=3, per_ip=5, window=60), clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("monsite", "10.0.0.1") == 0
        throttle.failed("monsite", "10.0.0.1")
    assert throttle.retry_after("monsite", "10.0.0.2") == 61  # the account is blocked
    assert throttle.retry_after("other", "10.0.0.3") == 0
    throttle.failed("a", "10.0.0.1")
    throttle.failed("b", "10.0.0.1")
    assert throttle.retry_after("c", "10.0.0.1") > 0  # the IP is blocked too
    now[0] += 61
    assert throttle.retry_after("monsite", "10.0.0.1") == 0


def test_success_clears_the_account() -> None:
    throttle = LoginThrottle(Limits(per_account=2, per_ip=100, window=60))
    throttle.failed("monsite", "10.0.0.1")
    throttle.succeeded("monsite")
    throttle.failed("monsite", "10.0.0.1")
    assert throttle.retry_after("monsite", "10.0.0.1") == 0
