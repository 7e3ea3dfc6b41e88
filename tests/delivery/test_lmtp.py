"""LMTP for a Postfix front end: LHLO, and one reply per recipient after DATA."""

from __future__ import annotations

import smtplib
from pathlib import Path

from tests.fixtures.platform import private_platform


def test_one_reply_per_recipient(tmp_path: Path) -> None:
    with private_platform(
        tmp_path,
        env={"COURRIEL_LMTP_ENABLED": "1"},
        users=(("info", ()), ("tiny", ("--quota", "1K"))),
    ) as platform:
        client = smtplib.LMTP("127.0.0.1", platform.port("lmtp"))
        try:
            client.ehlo_or_helo_if_needed()
            assert client.docmd("HELP", "LHLO") == (250, b"2.0.0 Syntax: LHLO hostname")
            client.mail("a@example.org")
            assert client.rcpt("info@monsite.be")[0] == 250
            assert client.rcpt("tiny@monsite.be")[0] == 250
            assert client.rcpt("nobody@monsite.be")[0] == 550
            client.putcmd("data")
            assert client.getreply()[0] == 354
            client.send(
                b"From: a@example.org\r\nSubject: lmtp\r\n\r\n"
                + (b"x" * 70 + b"\r\n") * 30
                + b".\r\n"
            )
            first, second = client.getreply(), client.getreply()
        finally:
            client.close()
        assert first[0] == 250
        assert second == (552, b"5.2.2 Message too big for the mailbox quota")
