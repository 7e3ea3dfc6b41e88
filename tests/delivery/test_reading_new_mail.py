"""The whole path of a message in one `courriel serve`: in over SMTP, into the Maildir,
and at once to a mail client waiting in IMAP IDLE; read over POP3 too; and the
"send account e-mail to" message arriving in the new mailbox itself."""

from __future__ import annotations

import contextlib
import imaplib
import poplib
import time

import pytest

from courriel.access.imap.mailboxes import IDLE_CHECK
from tests.fixtures.platform import STRONG, Platform, insecure_context


@pytest.fixture(scope="module")
def reader(platform: Platform) -> Platform:
    platform.courriel(
        "user",
        "create",
        "monsite.be",
        "--real",
        "Info",
        "--pass",
        STRONG,
        "--extra",
        "info",
        "--send-account-mail",
        "mailbox",
    )
    return platform


def test_account_mail_arrives_in_the_new_mailbox(reader: Platform) -> None:
    welcome = reader.wait_message("monsite0001", b"A mailbox has been created for you.")
    assert b"Login: monsite0001" in welcome and b"port 993" in welcome
    assert b"C0mpl3xP" not in welcome  # a password typed by the owner is not mailed


def test_idle_client_hears_of_new_mail_at_once(reader: Platform) -> None:
    client = imaplib.IMAP4_SSL("127.0.0.1", reader.port("imaps"), ssl_context=insecure_context())
    try:
        client.login("monsite0001", STRONG)
        _, data = client.select("INBOX")
        before = int(data[0])
        tag = client._new_tag().decode()
        client.send(f"{tag} IDLE\r\n".encode())
        assert client.readline().startswith(b"+")
        sent_at = time.monotonic()
        reader.send("alice@example.org", ["info@monsite.be"], "ding")
        client.sock.settimeout(25)
        line = client.readline()
        waited = time.monotonic() - sent_at
        assert line.strip() == f"* {before + 1} EXISTS".encode(), line
        # Pushed, not found by IDLE's periodic look at the folder (IDLE_CHECK, 30 s);
        # room for a loaded machine.
        assert IDLE_CHECK >= 30 and waited < 20
        client.send(b"DONE\r\n")
        while not client.readline().startswith(tag.encode()):
            pass
        _, fetched = client.fetch(str(before + 1), "(BODY.PEEK[])")
        assert b"ding" in fetched[0][1] and b"Delivered-To: info@monsite.be" in fetched[0][1]
    finally:
        with contextlib.suppress(TimeoutError, imaplib.IMAP4.error, OSError):
            client.logout()


def test_pop3_download_of_smtp_mail(reader: Platform) -> None:
    reader.send("bob@example.org", ["info@monsite.be"], "par POP3")
    # By its text, not a count: the other tests of the module may have run in
    # another pytest-xdist worker, with a platform of its own.
    reader.wait_message("monsite0001", b"par POP3")
    client = poplib.POP3_SSL("127.0.0.1", reader.port("pop3s"), context=insecure_context())
    try:
        client.user("monsite0001")
        client.pass_(STRONG)
        count, _ = client.stat()
        bodies = [b"\r\n".join(client.retr(n)[1]) for n in range(1, count + 1)]
        assert any(b"par POP3" in body for body in bodies)
    finally:
        client.quit()
