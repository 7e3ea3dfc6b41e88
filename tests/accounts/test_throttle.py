"""Sign-in throttling (issue 11, item 2): it slows attackers, never locks the real user
out. The rules are checked here on `courriel.accounts.signin.attempt`, the one path
every door takes; the doors' own tests drive real clients over real sockets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from courriel.accounts.models import KnownAddress, Mailbox, SignInFailure, SignInPace
from courriel.accounts.signin import Door, Outcome, attempt, confirm_password
from courriel.accounts.throttle import throttle
from courriel.config import get_config
from courriel.errors import PermissionDeniedError, TooManyAttemptsError
from tests.fixtures.accounts import STRONG, Customer

ATTACKER, USER = "198.51.100.5", "203.0.113.6"


def wrong(n: int) -> str:
    return f"guess-number-{n}"


def test_an_attacker_at_one_address_never_locks_the_user_out_at_another(info: Mailbox) -> None:
    """The attack as found: 5 wrong passwords locked monsite0001 out everywhere."""
    for n in range(5):
        assert attempt("monsite0001", wrong(n), ATTACKER, Door.IMAP).outcome is Outcome.FAILED
    refused = attempt("monsite0001", STRONG, ATTACKER, Door.IMAP)
    assert refused.outcome is Outcome.THROTTLED and 800 < refused.wait <= 901
    # The real user, at another address never seen before, gets in at once.
    for door in Door:
        assert attempt("monsite0001", STRONG, USER, door).ok, door
    # Typed as the primary address, it is the same login for the throttle.
    assert attempt("monsite0001@monsite.be", STRONG, ATTACKER, Door.POP3).outcome is (
        Outcome.THROTTLED
    )


def test_the_same_wrong_password_counts_once_and_costs_no_argon2(
    info: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):  # smtplib's login() tries PLAIN, then LOGIN, with one password
        assert attempt("monsite0001", "old-password", ATTACKER, Door.SMTP).outcome is (
            Outcome.FAILED
        )
    assert SignInFailure.objects.filter(login="monsite0001").count() == 1
    checked: list[str] = []
    from courriel.accounts.services import mailboxes

    original = mailboxes.password_matches
    monkeypatch.setattr(
        mailboxes, "password_matches", lambda m, p: checked.append(p) or original(m, p)
    )
    for _ in range(20):  # a phone with an old password, retrying all day
        attempt("monsite0001", "old-password", ATTACKER, Door.IMAP)
    assert checked == []
    assert attempt("monsite0001", STRONG, ATTACKER, Door.IMAP).ok


def test_a_success_forgets_the_users_own_typos(info: Mailbox) -> None:
    for n in range(4):
        attempt("monsite0001", wrong(n), USER, Door.PANEL)
    assert attempt("monsite0001", STRONG, USER, Door.PANEL).ok
    for n in range(4, 8):
        attempt("monsite0001", wrong(n), USER, Door.PANEL)
    assert attempt("monsite0001", STRONG, USER, Door.PANEL).ok


def test_an_address_guessing_many_logins_is_refused_but_known_logins_get_in(
    monsite: Customer, info: Mailbox
) -> None:
    assert attempt("monsite", monsite.password, ATTACKER, Door.PANEL).ok  # an office NAT
    for n in range(20):
        attempt(f"guess{n}", wrong(n), ATTACKER, Door.IMAP)
    assert attempt("monsite0001", STRONG, ATTACKER, Door.IMAP).outcome is Outcome.THROTTLED
    assert attempt("monsite", monsite.password, ATTACKER, Door.PANEL).ok
    assert attempt("monsite0001", STRONG, USER, Door.IMAP).ok


def test_known_addresses_are_kept_in_the_database(info: Mailbox) -> None:
    attempt("monsite0001", STRONG, USER, Door.IMAP)
    known = KnownAddress.objects.get(login="monsite0001", address=USER)
    assert known.last_success > timezone.now() - timedelta(minutes=1)
    throttle.reset()  # a restart: nothing in memory
    assert throttle.known("monsite0001", USER)
    KnownAddress.objects.update(last_success=timezone.now() - timedelta(days=31))
    throttle.reset()
    assert not throttle.known("monsite0001", USER)


@pytest.fixture
def quick_slow_down(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = get_config().auth
    monkeypatch.setitem(auth, "slow_down_after", 4)
    monkeypatch.setitem(auth, "max_slow_down", "4s")


def test_guessing_from_many_addresses_is_slowed_down_not_locked(
    info: Mailbox, quick_slow_down: Any
) -> None:
    assert attempt("monsite0001", STRONG, USER, Door.IMAP).ok  # the user's usual address
    for n in range(6):  # each from another address, each waiting its turn
        attempt("monsite0001", wrong(n), f"192.0.2.{n + 1}", Door.IMAP, paced=True)
    pace = SignInPace.objects.get(login="monsite0001")
    assert pace.interval == 4.0  # 1, 2, 4 seconds... at most max_slow_down
    # Checks from unknown addresses take turns, one every 4 seconds.
    now = attempt("monsite0001", wrong(50), "192.0.2.100", Door.IMAP)
    assert now.outcome is Outcome.FAILED  # its turn was now
    second = attempt("monsite0001", wrong(51), "192.0.2.101", Door.IMAP)
    third = attempt("monsite0001", wrong(52), "192.0.2.102", Door.IMAP)
    assert second.outcome is third.outcome is Outcome.SLOWED
    assert 3 < second.delay <= 4 and third.delay >= second.delay + 3.9
    # Too many waiting already: come back later, nothing is checked.
    busy = attempt("monsite0001", STRONG, "192.0.2.103", Door.IMAP)
    assert busy.outcome is Outcome.THROTTLED
    # Once it has waited its turn, a new address is checked (a delay, never a lock)...
    assert attempt("monsite0001", STRONG, "192.0.2.200", Door.IMAP, paced=True).ok
    # ...and the user's usual address gets in at once.
    assert attempt("monsite0001", STRONG, USER, Door.IMAP).ok


def test_failures_from_known_addresses_do_not_slow_the_login(
    info: Mailbox, quick_slow_down: Any
) -> None:
    attempt("monsite0001", STRONG, USER, Door.IMAP)
    for n in range(4):  # the user's own typos, at home: at most 4 before the limit
        attempt("monsite0001", wrong(n), USER, Door.IMAP)
    assert not SignInPace.objects.exists()


def test_the_current_password_is_asked_under_the_same_rules(info: Mailbox) -> None:
    with pytest.raises(PermissionDeniedError):
        confirm_password(info, "not-it", ATTACKER, Door.API)
    confirm_password(info, STRONG, ATTACKER, Door.API)
    for n in range(5):
        with pytest.raises(PermissionDeniedError):
            confirm_password(info, wrong(n), ATTACKER, Door.API)
    with pytest.raises(TooManyAttemptsError) as refused:
        confirm_password(info, STRONG, ATTACKER, Door.API)
    assert refused.value.retry_after > 0


def test_a_provider_admin_signs_in_through_the_panel_door_only(admin: Any) -> None:
    assert attempt("admin", admin.password, USER, Door.PANEL).user == admin.user
    assert not attempt("admin", admin.password, USER, Door.IMAP).ok
