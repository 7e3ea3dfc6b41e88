"""IMAP with Python's imaplib: the commands a mail client uses, scenario by scenario."""

from __future__ import annotations

import imaplib

from tests.access.conftest import Access, message


def connect(access: Access) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", access.ports["imap"], timeout=10)
    client.login(access.login, access.password)
    return client


def test_reads_a_delivered_message_byte_exact(access: Access) -> None:
    data = message("Bienvenue")
    access.deliver(data)
    client = connect(access)
    typ, info = client.select("INBOX")
    assert typ == "OK" and info == [b"1"]
    typ, fetched = client.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
    assert fetched[0][1] == data
    assert b"RFC822.SIZE %d" % len(data) in fetched[0][0]
    typ, fetched = client.uid("FETCH", "1:*", "(UID FLAGS)")
    assert typ == "OK" and b"UID 1" in fetched[0]
    client.logout()
