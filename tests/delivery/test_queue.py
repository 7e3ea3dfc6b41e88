"""The outbound queue: retries with back-off, bounces (RFC 3464) on permanent failure
or expiry, delay notices, never a bounce to the null sender; `courriel queue`."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest

from tests.fixtures.platform import private_platform
from tests.fixtures.waiting import wait_until


@pytest.fixture
def flaky(tmp_path: Path, request: pytest.FixtureRequest):
    """A platform whose outside world refuses some recipients, with short lifetimes."""
    attempts: dict[str, int] = {}

    def rcpt(address: str) -> str | None:
        attempts[address] = attempts.get(address, 0) + 1
        if address.startswith("later@"):
            return "451 4.2.0 try again" if attempts[address] < 3 else None
        if address.startswith("never@"):
            return "550 5.1.1 no such user"
        if address.startswith("slow@"):
            return "451 4.3.0 busy"
        return None

    # Retries every 1-2 s: a delay notice once 2 s have passed, well before the
    # lifetime ends, even on a machine where an attempt starts seconds late.
    lifetime = getattr(request, "param", "12s")
    env = {"COURRIEL_QUEUE_DELAY_WARNING": "2s", "COURRIEL_QUEUE_LIFETIME": lifetime}
    with private_platform(tmp_path, env=env) as platform:
        platform.sink.handler.rcpt_reply = rcpt
        yield platform, attempts


def dsn(message_bytes: bytes) -> tuple[str, list[str]]:
    message = email.message_from_bytes(message_bytes, policy=policy.default)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    parts = list(message.iter_parts())
    status = parts[1].as_bytes().decode()
    actions = [
        line.split(":", 1)[1].strip() for line in status.splitlines() if line.startswith("Action:")
    ]
    return str(message["Subject"]), actions


def test_retry_bounce_delay_and_expiry(flaky) -> None:
    platform, attempts = flaky
    with platform.submission("monsite0001") as client:
        refused = client.sendmail(
            "info@monsite.be",
            ["later@gmail.com", "never@gmail.com", "slow@gmail.com"],
            b"From: info@monsite.be\r\nSubject: queued\r\n\r\nhello\r\n",
        )
    assert refused == {}  # accepted: the queue takes over
    # later@ is refused twice with 451, then delivered by a retry.
    platform.sink.wait_for(1, where=lambda m: m.recipients == ["later@gmail.com"])
    assert attempts["later@gmail.com"] == 3
    # never@ gets a 550 at once: the sender gets a bounce in her mailbox.
    bounces = platform.wait_messages("monsite0001", 1)
    subject, actions = dsn(next(m for m in bounces if b"multipart/report" in m))
    assert subject == "Undelivered Mail Returned to Sender" and actions == ["failed"]

    # slow@ keeps failing: a delay notice after 2 s, then a bounce when it expires (12 s).
    def three_reports() -> list[tuple[str, list[str]]]:
        reports = [dsn(m) for m in platform.messages("monsite0001") if b"multipart/report" in m]
        return reports if len(reports) >= 3 else []

    reports = wait_until(three_reports, "the delay notice and the two bounces")
    kinds = sorted(subject for subject, _ in reports)
    assert kinds == [
        "Delayed Mail (still being retried)",
        "Undelivered Mail Returned to Sender",
        "Undelivered Mail Returned to Sender",
    ]
    assert platform.courriel("queue", "list", "--json").json == []


def test_no_bounce_to_the_null_sender(flaky) -> None:
    platform, _ = flaky
    platform.courriel("alias", "create", "monsite.be", "fwd", "--to", "never@gmail.com")
    with platform.smtp() as client:
        client.sendmail("", ["fwd@monsite.be"], b"From: MAILER-DAEMON@x.org\r\n\r\nbounce\r\n")
    wait_until(
        lambda: (
            "sender is null, no notification" in "".join(platform.served.output)
            and platform.courriel("queue", "list", "--json").json == []
        ),
        "the queue to give up on the bounce without notifying anyone",
    )
    assert not [m for m in platform.sink.messages if b"multipart/report" in m.content]


@pytest.mark.parametrize("flaky", ["1h"], indirect=True)  # the entry must stay
def test_queue_commands(flaky) -> None:
    platform, attempts = flaky
    with platform.submission("monsite0001") as client:
        client.sendmail(
            "info@monsite.be",
            ["slow@gmail.com"],
            b"From: info@monsite.be\r\nSubject: stuck\r\n\r\nx\r\n",
        )
    [entry] = wait_until(
        lambda: [e for e in platform.courriel("queue", "list", "--json").json if e["attempts"]],
        "the first delivery attempt",
    )
    assert entry["recipients"][0]["last_error"].startswith("451 4.3.0")
    shown = platform.courriel("queue", "show", entry["id"]).out
    assert "slow@gmail.com" in shown and "Subject: stuck" in shown
    before = attempts["slow@gmail.com"]
    platform.courriel("queue", "retry", entry["id"])
    wait_until(lambda: attempts["slow@gmail.com"] > before, "the retried attempt")
    status = platform.courriel("status", "--json").json
    assert status["queue"]["entries"] == 1 and status["running_pid"]
    platform.courriel("queue", "delete", entry["id"], "--yes")
    # At once, even with an attempt in flight: its end does not bring the entry back.
    assert platform.courriel("queue", "list", "--json").json == []
    missing = platform.courriel("queue", "delete", "NOPE", "--yes", ok=False)
    assert missing.code == 66
