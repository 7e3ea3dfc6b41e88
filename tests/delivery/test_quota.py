"""Quotas at delivery: 452 4.2.2 when full (retry later), 552 5.2.2 when the message is
bigger than the quota itself, one-time warnings at 80 % and 95 %, accounting that
follows deletions, and the "new mail received" time."""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.accounts import Customer
from tests.fixtures.platform import STRONG, Platform
from tests.fixtures.waiting import wait_until


@pytest.fixture(scope="module")
def small(platform: Platform) -> Platform:
    c = platform.courriel
    c(
        "user",
        "create",
        "monsite.be",
        "--real",
        "Small",
        "--pass",
        STRONG,
        "--extra",
        "small",
        "--quota",
        "40K",
    )
    return platform


def fill(platform: Platform, kib: int, tag: str) -> None:
    body = "\r\n".join([f"{tag:<70}"] * (kib * 1024 // 72))
    platform.send("filler@example.org", ["small@monsite.be"], body)


def test_warnings_then_full_then_too_big(small: Platform) -> None:
    fill(small, 24, "first")  # ~60 %
    fill(small, 10, "second")  # ~86 %: warning to the user
    notices = small.wait_messages("monsite0001", 3)
    warnings = [m for m in notices if b"Subject: Mailbox monsite0001 is 80% full" in m]
    assert len(warnings) == 1 and b"Auto-Submitted: auto-generated" in warnings[0]
    fill(small, 3, "third")  # ~96 %: warning to the user and to the owner
    owner = small.wait_messages("monsite", 1)
    assert any(b"is 95% full" in m for m in owner)
    assert sum(b"is 95% full" in m for m in small.wait_messages("monsite0001", 5)) == 1
    with small.smtp() as client:
        client.ehlo("x.example.org")
        client.mail("late@example.org", ["SIZE=2000"])
        assert client.rcpt("small@monsite.be") == (452, b"4.2.2 Mailbox full, try again later")
        client.rset()
        client.mail("huge@example.org", ["SIZE=100000"])
        assert client.rcpt("small@monsite.be") == (
            552,
            b"5.2.2 Message too big for the mailbox quota",
        )
    shown = small.courriel("user", "show", "monsite.be", "monsite0001", "--json").json
    assert shown["quota_used"] >= 38 * 1024


def test_deleting_mail_frees_room(small: Platform) -> None:
    from courriel.mailstore import quota

    maildir = small.maildir("monsite0001")
    for path in list((maildir / "new").iterdir()):
        size = path.stat().st_size
        path.unlink()
        quota.add(maildir, -size, -1)  # what IMAP/POP3 expunge does
    small.send("back@example.org", ["small@monsite.be"], "room again")
    assert small.wait_message("monsite0001", b"room again")
    # Last-mail times are written every few seconds.
    wait_until(
        lambda: small.courriel("user", "show", "monsite.be", "monsite0001", "--json").json[
            "last_mail_at"
        ],
        "the mailbox's date of last new mail",
    )


def test_maildirsize_states_the_quota_the_panel_sets(courriel) -> None:
    """Dovecot (production mode) reads the limit from `maildirsize`: it must follow
    every change, unlimited included."""
    courriel("domain", "create", "monsite.be", "--plan", "recommended")
    courriel("user", "create", "monsite.be", "--real", "Q", "--pass", STRONG, "--quota", "1M")
    sizefile = courriel.data / "mail/monsite.be/homes/monsite0001/Maildir/maildirsize"
    assert sizefile.read_text().splitlines()[0] == "1048576S"
    courriel("user", "modify", "monsite.be", "monsite0001", "--quota", "10M")
    assert sizefile.read_text().splitlines()[0] == "10485760S"
    courriel("user", "modify", "monsite.be", "monsite0001", "--quota", "unlimited")
    assert sizefile.read_text().splitlines()[0] == "0S"


@pytest.mark.django_db
def test_a_domain_total_expiring_between_two_looks_is_not_read_on_the_event_loop(
    monsite: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SMTP server answers RCPT from memory when the customer's total is cached
    (`domain_used_is_known`) and otherwise asks a thread; the total used to be looked
    up again right after, so one that expired in between was read from the database
    on the event loop: `SynchronousOnlyOperation` and a dropped session (seen once in
    60,000 benchmark messages)."""
    from courriel.delivery import quota

    mailbox = monsite.owner
    assert mailbox.domain.top.effective_plan.mail_quota is not None
    quota.domain_used(mailbox.domain)  # cached now
    assert quota.domain_used_is_known(mailbox.domain)
    clock = [quota.time.monotonic() + 3600]  # ...and expired just after that look
    monkeypatch.setattr(quota.time, "monotonic", lambda: clock[0])

    async def rcpt_time() -> bool:
        return quota.has_room(mailbox, 1000, cached=True)

    assert asyncio.run(rcpt_time()) is True
