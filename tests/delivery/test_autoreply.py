"""Chapter 9: vacation messages — only between their dates, at most once per sender
per minimum interval, never to automatic mail (RFC 3834). The manual's nightmare of
two auto-replies answering each other forever cannot happen."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest

from tests.fixtures.platform import STRONG, Platform, message


@pytest.fixture(scope="module")
def vacation(platform: Platform) -> Platform:
    c = platform.courriel
    today = date.today()
    c("user", "create", "monsite.be", "--real", "Info", "--pass", STRONG, "--extra", "info")
    c(
        "user",
        "autoreply",
        "monsite.be",
        "monsite0001",
        "--message",
        "I'm currently not available — je suis absent.",
        "--interval",
        "none",
    )
    c("user", "create", "monsite.be", "--real", "John", "--pass", STRONG, "--extra", "john")
    c(
        "user",
        "autoreply",
        "monsite.be",
        "monsite0002",
        "--message",
        "John is away",
        "--interval",
        "none",
    )
    c("user", "create", "monsite.be", "--real", "Later", "--pass", STRONG, "--extra", "later")
    c(
        "user",
        "autoreply",
        "monsite.be",
        "monsite0003",
        "--message",
        "Back soon",
        "--start",
        (today + timedelta(days=1)).isoformat(),
        "--end",
        (today + timedelta(days=10)).isoformat(),
    )
    c("user", "create", "monsite.be", "--real", "Nico", "--pass", STRONG, "--extra", "nico")
    c(
        "user",
        "autoreply",
        "monsite.be",
        "monsite0004",
        "--message",
        "Nico is on holiday",
        "--interval",
        "10m",
        "--start",
        (today - timedelta(days=1)).isoformat(),
        "--end",
        (today + timedelta(days=1)).isoformat(),
    )
    return platform


def replies_to(platform: Platform, address: str) -> list:
    return [m for m in platform.sink.messages if m.recipients == [address]]


def test_the_manuals_nightmare_gives_exactly_one_reply_each(vacation: Platform) -> None:
    with vacation.submission("monsite0001") as client:
        client.sendmail(
            "info@monsite.be",
            ["john@monsite.be"],
            message("info@monsite.be", ["john@monsite.be"], "Hi John"),
        )
    with vacation.submission("monsite0002") as client:
        client.sendmail(
            "john@monsite.be",
            ["info@monsite.be"],
            message("john@monsite.be", ["info@monsite.be"], "Hi Info"),
        )
    info = vacation.wait_messages("monsite0001", 2)
    john = vacation.wait_messages("monsite0002", 2)
    time.sleep(3)  # give a would-be loop time to show itself
    info, john = vacation.messages("monsite0001"), vacation.messages("monsite0002")
    assert len(info) == 2 and len(john) == 2
    reply_to_info = next(m for m in info if b"Auto-Submitted: auto-replied" in m)
    assert b"John is away" in reply_to_info
    assert b"Return-Path: <>" in reply_to_info
    assert b"In-Reply-To: <" in reply_to_info and b"Subject: Auto: Test" in reply_to_info
    assert any(b"Auto-Submitted: auto-replied" in m for m in john)


def test_reply_is_utf8_mime_from_the_address_written_to(vacation: Platform) -> None:
    vacation.send("alice@example.org", ["info@monsite.be"], "Are you there?")
    [reply] = vacation.sink.wait_for(1, where=lambda m: m.recipients == ["alice@example.org"])
    assert reply.sender == ""
    assert reply.header("From") == "Info <info@monsite.be>"
    assert reply.header("Auto-Submitted") == "auto-replied"
    assert b'charset="utf-8"' in reply.content or b"charset=utf-8" in reply.content
    import email
    from email import policy

    body = email.message_from_bytes(reply.content, policy=policy.default).get_content()
    assert "je suis absent" in body and "—" in body


@pytest.mark.parametrize(
    ("sender", "headers", "to"),
    [
        ("list@example.org", {"Precedence": "bulk"}, "info@monsite.be"),
        ("list@example.org", {"List-Id": "<news.example.org>"}, "info@monsite.be"),
        ("robot@example.org", {"Auto-Submitted": "auto-generated"}, "info@monsite.be"),
        ("noreply@example.org", {}, "info@monsite.be"),
        ("owner-list@example.org", {}, "info@monsite.be"),
        ("bcc@example.org", {}, "someone-else@example.org"),  # info@ only in Bcc
    ],
    ids=["bulk", "list", "auto-submitted", "noreply", "owner-", "not-in-to-cc"],
)
def test_automatic_or_list_mail_gets_no_reply(
    vacation: Platform, sender: str, headers: dict[str, str], to: str
) -> None:
    content = message(sender, [to], f"no reply for {sender} {headers}", headers)
    with vacation.smtp() as client:
        client.sendmail(sender, ["info@monsite.be"], content)
    time.sleep(1.5)
    assert replies_to(vacation, sender) == []


def test_null_sender_gets_no_reply(vacation: Platform) -> None:
    with vacation.smtp() as client:
        client.sendmail(
            "", ["info@monsite.be"], message("MAILER-DAEMON@x.org", ["info@monsite.be"], "bounce")
        )
    time.sleep(1.5)
    assert [m for m in vacation.sink.messages if b"bounce" in m.content] == []


def test_minimum_interval_between_replies(vacation: Platform) -> None:
    for n in range(3):
        vacation.send("bob@example.org", ["nico@monsite.be"], f"message {n}")
    vacation.wait_messages("monsite0004", 3)
    vacation.sink.wait_for(1, where=lambda m: m.recipients == ["bob@example.org"])
    time.sleep(2)  # room for a wrong second reply to show itself
    assert len(replies_to(vacation, "bob@example.org")) == 1
    # Without a minimum, every (human) message is answered.
    for n in range(2):
        vacation.send("carol@example.org", ["info@monsite.be"], f"again {n}")
    vacation.sink.wait_for(2, where=lambda m: m.recipients == ["carol@example.org"])


def test_no_reply_before_the_start_date(vacation: Platform) -> None:
    vacation.send("dave@example.org", ["later@monsite.be"], "too early")
    vacation.wait_messages("monsite0003", 1)
    time.sleep(1.5)
    assert replies_to(vacation, "dave@example.org") == []
