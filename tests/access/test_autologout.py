"""A signed-in client that says nothing for `[access] imap_autologout` /
`pop3_autologout` is logged out (RFC 3501 5.4, RFC 1939 3); one that keeps talking is
never cut off, however long the session lasts, and IDLE ends the same way."""

from __future__ import annotations

import dataclasses
import imaplib
import poplib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.access.conftest import (
    PASSWORD,
    Access,
    _settings,
    start_listeners,
    stop_listeners,
)

# Long enough that a client which talks every 0.2 s is never that late, even on a
# loaded machine.
IDLE_LIMIT = 2.0
TALK_EVERY = 0.2


@pytest.fixture
def quick(mailbox_user: tuple[str, str, Path]) -> Iterator[Access]:
    """Servers that log a silent client out after two seconds."""
    login, address, maildir = mailbox_user
    settings = dataclasses.replace(
        _settings(True), imap_autologout=IDLE_LIMIT, pop3_autologout=IDLE_LIMIT
    )
    ports, loop, thread, listeners = start_listeners(settings)
    try:
        yield Access(ports, maildir, login, PASSWORD, address, "", loop)
    finally:
        stop_listeners(loop, thread, listeners)


def read_all(sock: socket.socket, within: float) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(within)
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_a_silent_pop3_client_is_logged_out(quick: Access) -> None:
    client = poplib.POP3("127.0.0.1", quick.ports["pop3"], timeout=10)
    client.user(quick.login)
    started = time.monotonic()  # before PASS: what we measure is never shorter than the idle
    client.pass_(quick.password)
    rest = read_all(client.sock, 10 + IDLE_LIMIT)
    assert rest == b"-ERR Autologout: idle for too long.\r\n"
    assert IDLE_LIMIT <= time.monotonic() - started < IDLE_LIMIT + 5


def test_a_pop3_client_that_keeps_talking_stays(quick: Access) -> None:
    client = poplib.POP3("127.0.0.1", quick.ports["pop3"], timeout=10)
    client.user(quick.login)
    client.pass_(quick.password)
    end = time.monotonic() + 3 * IDLE_LIMIT
    while time.monotonic() < end:
        assert client.noop().startswith(b"+OK")
        time.sleep(TALK_EVERY)
    assert client.stat() == (0, 0)
    client.quit()


def test_a_silent_imap_client_is_logged_out(quick: Access) -> None:
    client = imaplib.IMAP4("127.0.0.1", quick.ports["imap"], timeout=10)
    client.login(quick.login, quick.password)
    client.select("INBOX")
    assert read_all(client.sock, 10) == b"* BYE Autologout: idle for too long.\r\n"


def test_an_imap_client_that_keeps_talking_stays(quick: Access) -> None:
    client = imaplib.IMAP4("127.0.0.1", quick.ports["imap"], timeout=10)
    client.login(quick.login, quick.password)
    client.select("INBOX")
    end = time.monotonic() + 3 * IDLE_LIMIT
    while time.monotonic() < end:
        assert client.noop()[0] == "OK"
        time.sleep(TALK_EVERY)
    client.logout()


def test_idle_without_done_ends_at_the_autologout(quick: Access) -> None:
    client = imaplib.IMAP4("127.0.0.1", quick.ports["imap"], timeout=10)
    client.login(quick.login, quick.password)
    client.select("INBOX")
    client.send(b"i1 IDLE\r\n")
    rest = read_all(client.sock, 10)
    assert rest.startswith(b"+ idling\r\n"), rest
    assert rest.endswith(b"* BYE Autologout: idle for too long.\r\n"), rest
