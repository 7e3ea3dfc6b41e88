"""The counters the mail plane keeps in memory: added up per hour, written by `flush`
to the hourly and daily rows (added to what other processes wrote), with domains
mapped to the hosted domain (domain aliases too) and everything else to ""."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import DatabaseError
from django.db.models import Sum

from courriel.accounts.services.domains import add_domain_alias
from courriel.stats import counters
from courriel.stats.models import DailyCount, HourlyCount
from courriel.stats.reasons import greylisting, reason_of
from tests.fixtures.accounts import Customer


@pytest.fixture(autouse=True)
def nothing_pending() -> Iterator[None]:
    counters.pending()  # what other tests left is not ours
    with counters._lock:
        counters._pending.clear()
    counters.forget_hosted_names()
    yield
    with counters._lock:
        counters._pending.clear()
    counters.forget_hosted_names()


def written(metric: str, domain: str, model: Any = HourlyCount, **more: str) -> int:
    rows = model.objects.filter(metric=metric, domain=domain, **more)
    return rows.aggregate(total=Sum("count"))["total"] or 0


def test_counts_are_added_up_then_written_once(monsite: Customer) -> None:
    add_domain_alias(monsite.actor, monsite.domain, "monsite.eu")
    for _ in range(3):
        counters.count("received", "monsite.be")
    counters.count("received", "monsite.eu")  # a domain alias counts for its domain
    counters.count("refused", "gmail.com", "relay_denied")  # not ours: ""
    counters.count("refused", "monsite.be", "unknown_recipient", n=2)
    assert counters.flush() == 3
    assert written("received", "monsite.be") == 4
    assert written("received", "monsite.be", DailyCount) == 4
    assert written("refused", "", reason="relay_denied") == 1
    assert written("refused", "monsite.be", reason="unknown_recipient") == 2
    assert counters.flush() == 0  # nothing new
    counters.count("received", "monsite.be")
    counters.flush()
    assert written("received", "monsite.be") == 5  # added to, not replaced


def test_threads_lose_nothing(monsite: Customer) -> None:
    def burst() -> None:
        for _ in range(2000):
            counters.count("delivered", "monsite.be")

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counters.flush()
    assert written("delivered", "monsite.be") == 8000


def test_a_failed_write_keeps_the_counts(
    monsite: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    counters.count("sent", "monsite.be", n=7)

    def broken(*args: object, **kwargs: object) -> None:
        raise DatabaseError("database restarting")

    monkeypatch.setattr(counters, "_add", broken)
    with pytest.raises(DatabaseError):
        counters.flush()
    monkeypatch.undo()
    assert sum(counters.pending().values()) == 7
    counters.flush()
    assert written("sent", "monsite.be") == 7


def test_a_flood_of_domains_is_folded(monsite: Customer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counters, "MAX_KEYS", 10)
    for n in range(50):
        counters.count("refused", f"random{n}.example", "relay_denied")
    assert len(counters.pending()) <= 11
    counters.flush()
    assert written("refused", "", reason="relay_denied") == 50


def test_the_queue_keeps_its_largest_size(monsite: Customer) -> None:
    when = datetime(2099, 9, 9, 10, 5, tzinfo=UTC)
    for size in (3, 9, 4):
        counters.gauge("queue", size, when)
    assert HourlyCount.objects.get(metric="queue").count == 9
    assert DailyCount.objects.get(metric="queue").count == 9


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("550 5.1.1 No such user here", "unknown_recipient"),
        ("554 5.7.1 Relay access denied", "relay_denied"),
        ("452 4.2.2 Mailbox full, try again later", "mailbox_full"),
        ("552 5.2.2 Message too big for the mailbox quota", "mailbox_full"),
        ("554 5.7.1 Message refused as spam", "spam"),
        ("550 5.7.1 Message refused: it fails the DMARC policy of a.example", "authentication"),
        ("554 5.6.0 Message contains NUL bytes", "content"),
        ("554 5.4.6 Too many hops (Received headers): mail loop", "loop"),
        ("501 5.1.3 Bad recipient address syntax", "invalid"),
        ("452 4.5.3 Too many recipients", "too_many_recipients"),
        ("451 4.4.3 Cannot verify the sender's authentication now (DNS)", "temporary"),
        ("553 5.7.1 <a@b.c>: sender address not owned by user x", "other"),
    ],
)
def test_reasons_from_replies(reply: str, reason: str) -> None:
    assert reason_of(reply) == reason


def test_greylisting_is_not_a_refusal() -> None:
    assert greylisting("451 4.7.1 Greylisting in effect, please retry in 15 minutes")
    assert not greylisting("451 4.7.1 Spam filter unavailable, try again later")
