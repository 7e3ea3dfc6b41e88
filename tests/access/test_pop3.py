"""POP3 with Python's poplib: the manual's "POP server (receiving)" as a client sees it."""

from __future__ import annotations

import os
import poplib
import socket
from pathlib import Path

import pytest

from courriel.mailstore import quota
from tests.access.conftest import Access, message
from tests.fixtures.dovecot import Dovecot


def connect(access: Access) -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", access.ports["pop3"], timeout=10)
    client.user(access.login)
    client.pass_(access.password)
    return client


def test_download_with_dot_stuffing_top_and_uidl_shared_with_imap(access: Access) -> None:
    tricky = message("Dots", body="first line\r\n.starts with a dot\r\n.\r\nend")
    access.deliver(message("Plain"))
    access.deliver(tricky)
    client = connect(access)
    count, size = client.stat()
    assert count == 2 and size == len(message("Plain")) + len(tricky)
    _response, lines, _octets = client.retr(2)
    assert b"\r\n".join(lines) + b"\r\n" == tricky
    _response, lines, _ = client.top(2, 1)
    assert lines[-1] == b"first line" and b"Subject: Dots" in lines
    uidls = [line.split()[1] for line in client.uidl()[1]]
    import imaplib

    imap = imaplib.IMAP4("127.0.0.1", access.ports["imap"], timeout=10)
    imap.login(access.login, access.password)
    imap.select("INBOX")
    validity = int(imap.response("UIDVALIDITY")[1][0])
    assert uidls == [f"{uid:08x}{validity:08x}".encode() for uid in (1, 2)]
    imap.logout()
    assert client.capa()["UIDL"] == [] and "TOP" in client.capa()
    client.quit()


def test_dele_applies_only_at_quit_and_rset_undoes(access: Access) -> None:
    for index in range(3):
        access.deliver(message(f"M{index}"))
    client = connect(access)
    client.dele(1)
    with pytest.raises(poplib.error_proto, match="deleted"):
        client.retr(1)
    client.rset()
    client.dele(2)
    assert client.stat()[0] == 2
    client.quit()
    client = connect(access)
    assert client.stat()[0] == 2
    assert [line.split()[0] for line in client.list()[1]] == [b"1", b"2"]
    client.quit()
    assert quota.usage(access.maildir)[1] == 2


def test_leave_on_server_keeps_mail_and_marks_it_seen(access: Access) -> None:
    access.deliver(message("Keep me"))
    client = connect(access)
    client.retr(1)
    client.quit()
    files = list((access.maildir / "cur").iterdir())
    assert len(files) == 1 and files[0].name.endswith(":2,S")


def test_second_session_gets_in_use(access: Access) -> None:
    first = connect(access)
    second = poplib.POP3("127.0.0.1", access.ports["pop3"], timeout=10)
    second.user(access.login)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        second.pass_(access.password)
    first.quit()
    second.close()
    connect(access).quit()


def test_auth_plain_and_login_by_address(access: Access) -> None:
    import base64

    client = poplib.POP3("127.0.0.1", access.ports["pop3"], timeout=10)
    token = base64.b64encode(f"\0{access.address}\0{access.password}".encode()).decode()
    assert client._shortcmd(f"AUTH PLAIN {token}").startswith(b"+OK")
    assert client.stat() == (0, 0)
    client.quit()


@pytest.mark.parametrize(
    "line",
    [
        b"RETR",
        b"RETR 0",
        b"RETR 99",
        b"RETR -1",
        b"TOP 1",
        b"LIST x",
        b"\xff\xfe",
        b"X" * 600,
        b"DELE 1 2",
        b"BOGUS",
    ],
)
def test_bad_commands_get_err(access: Access, line: bytes) -> None:
    access.deliver(message("Present"))
    with socket.create_connection(("127.0.0.1", access.ports["pop3"]), timeout=10) as sock:
        stream = sock.makefile("rwb")
        stream.readline()
        stream.write(f"USER {access.login}\r\nPASS {access.password}\r\n".encode())
        stream.flush()
        stream.readline()
        assert stream.readline().startswith(b"+OK")
        stream.write(line + b"\r\nNOOP\r\n")
        stream.flush()
        assert stream.readline().startswith(b"-ERR")
        assert stream.readline().startswith(b"+OK")


def _files(maildir: Path) -> list[tuple[str, str]]:
    """(directory, flags) of each file, by name without its flags."""
    found = []
    for sub in ("new", "cur"):
        for name in os.listdir(maildir / sub):
            base, _, flags = name.partition(":2,")
            found.append((base, sub, flags))
    return [(sub, flags) for _base, sub, flags in sorted(found)]


def test_delivered_files_move_once_at_quit_as_with_dovecot(
    access: Access, dovecot: Dovecot
) -> None:
    """Dovecot leaves new/ alone at login and moves each file to cur/ at QUIT, with
    \\Seen if it was retrieved: one rename per message (the first session of a big
    mailbox costs half the renames it did when files moved at login too)."""
    for index in range(3):
        access.deliver(message(f"M{index}"))
    theirs = dovecot.add_user(access.maildir)
    for port, login, password, maildir in (
        (access.ports["pop3"], access.login, access.password, access.maildir),
        (dovecot.pop3_port, theirs.name, theirs.password, theirs.maildir),
    ):
        client = poplib.POP3("127.0.0.1", port, timeout=10)
        client.user(login)
        client.pass_(password)
        assert _files(maildir) == [("new", "")] * 3
        client.retr(2)
        client.quit()
    assert (
        _files(access.maildir)
        == _files(theirs.maildir)
        == [
            ("cur", ""),
            ("cur", "S"),
            ("cur", ""),
        ]
    )
