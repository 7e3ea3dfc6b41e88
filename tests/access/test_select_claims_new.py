"""The first SELECT of a folder where many messages were delivered: it answers after
moving the oldest files from new/ to cur/, and the others move in the background while
the session (and others) keep working. Nothing is lost or seen twice on the way, and
every message is \\Recent for that one session only, as when all moved at once."""

from __future__ import annotations

import imaplib
import time
from pathlib import Path

import pytest

from courriel.mailstore import index
from tests.access.conftest import Access, message

DELIVERED = 60


def connect(access: Access) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", access.ports["imap"], timeout=30)
    client.login(access.login, access.password)
    return client


def files(maildir: Path, sub: str) -> list[str]:
    return sorted(p.name for p in (maildir / sub).iterdir())


def wait_until_new_is_empty(maildir: Path) -> None:
    deadline = time.monotonic() + 30
    while files(maildir, "new"):
        assert time.monotonic() < deadline, f"{len(files(maildir, 'new'))} files left in new/"
        time.sleep(0.05)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "CLAIM_AT_ONCE", 7)


@pytest.mark.usefixtures("small_batches")
def test_first_select_moves_the_rest_of_new_in_the_background(access: Access) -> None:
    for number in range(DELIVERED):
        access.deliver(message(subject=f"Courrier {number}", body=f"corps {number}"))
    client = connect(access)
    typ, data = client.select("INBOX")
    assert typ == "OK" and int(data[0]) == DELIVERED
    assert client.untagged_responses.get("RECENT") == [str(DELIVERED).encode()]
    # Read everything at once, while files are still moving.
    _typ, fetched = client.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = [part[1].strip() for part in fetched if isinstance(part, tuple)]
    assert subjects == [f"Subject: Courrier {n}".encode() for n in range(DELIVERED)]
    wait_until_new_is_empty(access.maildir)
    moved = files(access.maildir, "cur")
    assert len(moved) == DELIVERED and all(name.endswith(":2,") for name in moved)
    _typ, fetched = client.fetch("1:*", "(UID BODY.PEEK[TEXT])")
    bodies = [part[1].strip() for part in fetched if isinstance(part, tuple)]
    assert bodies == [f"corps {n}".encode() for n in range(DELIVERED)]
    uids = client.uid("SEARCH", "ALL")[1][0].split()

    other = connect(access)
    typ, data = other.select("INBOX")
    assert int(data[0]) == DELIVERED
    assert other.untagged_responses.get("RECENT") == [b"0"]  # recent for the first only
    assert other.uid("SEARCH", "ALL")[1][0].split() == uids
    other.logout()
    client.logout()


@pytest.mark.usefixtures("small_batches")
def test_examine_leaves_new_alone(access: Access) -> None:
    for number in range(20):
        access.deliver(message(subject=f"Lu seulement {number}"))
    client = connect(access)
    typ, data = client.select("INBOX", readonly=True)
    assert typ == "OK" and int(data[0]) == 20
    for _ in range(5):  # round trips during which a mover would have run
        client.noop()
    client.fetch("1:*", "(BODY.PEEK[])")
    assert len(files(access.maildir, "new")) == 20
    client.logout()


@pytest.mark.usefixtures("small_batches")
def test_an_expunge_and_a_delivery_while_files_move(access: Access) -> None:
    for number in range(DELIVERED):
        access.deliver(message(subject=f"Avant {number}"))
    client = connect(access)
    client.select("INBOX")
    client.store("1:10", "+FLAGS", "(\\Deleted)")
    client.expunge()
    access.deliver(message(subject="Pendant"))
    # The background mover may have finished before this delivery; the session's next
    # command takes the new message (to cur/, \Recent for it), as Dovecot does.
    client.noop()
    wait_until_new_is_empty(access.maildir)
    _typ, data = client.search(None, "ALL")
    assert len(data[0].split()) == DELIVERED - 10 + 1
    assert len(files(access.maildir, "cur")) == DELIVERED - 10 + 1
    _typ, fetched = client.fetch("*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert fetched[0][1].strip() == b"Subject: Pendant"
    client.logout()
