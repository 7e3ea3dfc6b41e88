"""What real clients hit (issue 17), each reproduced with a real client before it was
fixed: a draft with an attachment saved over IMAP, a folder deleted and made again in
the same second, special folders Roundcube could not see, refused commands nobody could
find in the log. (The answers that must be Dovecot's are in `differential/`.)"""

from __future__ import annotations

import imaplib
import logging
import re
import socket
from pathlib import Path

import pytest

from courriel.mailstore import uidvalidity
from tests.access.conftest import Access
from tests.access.differential.runner import big_message


def connect(access: Access) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", access.ports["imap"], timeout=30)
    client.login(access.login, access.password)
    return client


def test_a_draft_with_a_150_kb_attachment_is_saved(access: Access) -> None:
    draft = big_message(150_000)
    client = connect(access)
    typ, data = client.append("Drafts", "(\\Draft \\Seen)", None, draft)
    assert typ == "OK" and b"APPENDUID" in data[0], data
    client.select("Drafts")
    _typ, fetched = client.fetch("1", "(FLAGS BODY.PEEK[])")
    assert fetched[0][1] == draft and b"\\Draft" in fetched[0][0]
    client.logout()


def test_a_non_synchronising_literal_over_64_kib_is_read_whole(access: Access) -> None:
    """LITERAL+ (what mbsync sends): the 70 KB literal follows the line at once; the
    next command on the connection must still be understood."""
    data = big_message(70_000)
    with socket.create_connection(("127.0.0.1", access.ports["imap"]), timeout=30) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        sock.sendall(
            f"a LOGIN {access.login} {access.password}\r\n".encode()
            + b"b APPEND Sent {%d+}\r\n%s\r\nc NOOP\r\n" % (len(data), data)
        )
        lines = [stream.readline() for _ in range(3)]
    assert lines[1].startswith(b"b OK [APPENDUID "), lines
    assert lines[2].startswith(b"c OK"), lines


def test_uidvalidity_is_never_reused_for_a_name(access: Access) -> None:
    """DELETE then CREATE (or RENAME away then CREATE) within one second: each folder
    of that name gets a UIDVALIDITY never seen before, from Dovecot's own counter."""
    client = connect(access)
    seen = []
    for _round in range(4):
        assert client.create("Dossier")[0] == "OK"
        status = client.status("Dossier", "(UIDVALIDITY)")[1][0]
        seen.append(int(re.search(rb"UIDVALIDITY (\d+)", status).group(1)))
        if _round % 2:
            assert client.delete("Dossier")[0] == "OK"
        else:
            assert client.rename("Dossier", f"Away{_round}")[0] == "OK"
    client.logout()
    assert len(set(seen)) == len(seen), seen
    # The counter is Dovecot's file: Dovecot continues from the last value given.
    counter = access.maildir / uidvalidity.FILENAME
    assert int(counter.read_text()[:8], 16) >= max(seen)
    assert (
        access.maildir / f"{uidvalidity.FILENAME}.{int(counter.read_text()[:8], 16):08x}"
    ).exists()


def test_uidvalidity_counter_survives_a_lost_file(tmp_path: Path) -> None:
    first = uidvalidity.next_value(tmp_path)
    (tmp_path / uidvalidity.FILENAME).unlink()  # the marker file tells where we were
    second = uidvalidity.next_value(tmp_path)
    third = uidvalidity.next_value(tmp_path)
    assert first < second < third


def test_special_folders_are_subscribed_for_an_existing_mailbox(access: Access) -> None:
    """A mailbox made before Courriel subscribed them (no `subscriptions` file): the
    first login subscribes Drafts, Sent, Junk and Trash, in Dovecot's file format."""
    (access.maildir / "subscriptions").unlink()
    client = connect(access)
    names = sorted(line.decode().rsplit(" ", 1)[1] for line in client.lsub()[1])
    assert names == ["Drafts", "Junk", "Sent", "Trash"]
    text = (access.maildir / "subscriptions").read_text()
    assert text.startswith("V\t2\n\n") and "Trash\n" in text
    assert client.subscribe("Trash")[0] == "OK"
    assert client.create("Projets/2024")[0] == "OK"
    assert client.subscribe("Projets/2024")[0] == "OK"
    assert "Projets\t2024\n" in (access.maildir / "subscriptions").read_text()
    client.logout()


def test_refused_commands_are_logged_with_their_reason(
    access: Access, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="courriel.access.imap")
    client = connect(access)
    assert client.select("Nowhere")[0] == "NO"
    with socket.create_connection(("127.0.0.1", access.ports["imap"]), timeout=30) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        sock.sendall(
            f"a LOGIN {access.login} {access.password}\r\n".encode()
            + b"b APPEND INBOX {999999999999}\r\nc BOGUS\r\n"
        )
        answers = [stream.readline() for _ in range(3)]
    assert answers[1].startswith(b"b BAD [TOOBIG]"), answers
    client.logout()
    logged = caplog.text
    assert "IMAP monsite0001 " in logged and "SELECT" in logged and "NONEXISTENT" in logged
    assert re.search(r"b APPEND .*BAD \[TOOBIG\] Literal too big", logged), logged
    assert re.search(r"c BOGUS .*BAD Unknown command BOGUS", logged), logged
