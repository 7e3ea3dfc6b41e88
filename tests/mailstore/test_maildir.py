"""Durable Maildir writes and Maildir++ quota accounting."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from courriel.mailstore import quota
from courriel.mailstore.layout import create_maildir
from courriel.mailstore.maildir import (
    Delivery,
    MaildirError,
    clean_tmp,
    deliver,
    deliver_many,
    folder_path,
)

MESSAGE = b"From: a@b.be\r\nSubject: hi\r\n\r\nhello\r\n"


def test_delivery_is_byte_exact_with_sizes_in_the_name(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    create_maildir(maildir)
    for folder in ("Sent", "Drafts", "Trash", "Junk"):
        assert (maildir / f".{folder}" / "maildirfolder").exists()
    stored = deliver(maildir, MESSAGE)
    assert stored.path.parent == maildir / "new"
    assert stored.path.read_bytes() == MESSAGE
    assert f",S={len(MESSAGE)},W={len(MESSAGE)}" in stored.path.name
    assert list((maildir / "tmp").iterdir()) == []
    assert quota.usage(maildir) == (len(MESSAGE), 1)


def test_client_stored_message_goes_to_cur_with_flags(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    create_maildir(maildir)
    stored = deliver(maildir, [b"a", b"bc"], folder="Sent", flags="SR")
    assert stored.path.parent == folder_path(maildir, "Sent") / "cur"
    assert stored.path.name.endswith(":2,RS") and stored.size == 3


def test_names_are_unique(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    names = {deliver(maildir, MESSAGE, durable=False).path.name for _ in range(200)}
    assert len(names) == 200


def test_quota_follows_deletions_and_recalculates(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    create_maildir(maildir)
    first = deliver(maildir, MESSAGE)
    deliver(maildir, MESSAGE * 2)
    assert quota.usage(maildir) == (3 * len(MESSAGE), 2)
    first.path.unlink()
    quota.add(maildir, -len(MESSAGE), -1)
    assert quota.usage(maildir) == (2 * len(MESSAGE), 1)
    # A damaged file is rebuilt from the messages themselves...
    (maildir / "maildirsize").write_text("garbage\nx y\n")
    assert quota.usage(maildir) == (2 * len(MESSAGE), 1)
    # ...and one grown past 5120 bytes is compacted to its sum.
    with open(maildir / "maildirsize", "a") as handle:
        handle.write("0 0\n" * 2000)
    assert quota.usage(maildir) == (2 * len(MESSAGE), 1)
    assert (maildir / "maildirsize").stat().st_size < 100
    assert quota.usage(maildir) == (2 * len(MESSAGE), 1)


def test_full_disk_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    maildir = tmp_path / "Maildir"
    create_maildir(maildir)
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        if fd > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(MaildirError) as caught:
        deliver(maildir, MESSAGE)
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert list((maildir / "tmp").iterdir()) == []
    assert list((maildir / "new").iterdir()) == []


@pytest.mark.parametrize("failing", ["rename", "sync"])
def test_one_message_for_two_mailboxes_is_in_both_or_in_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """A copy that cannot go into place (the directory cannot grow: a full disk; its
    flush fails) takes back the copies already in place: the sender, told to try
    again, must not give the first mailbox the message twice."""
    from courriel.mailstore import maildir as maildir_module

    one, two = tmp_path / "one" / "Maildir", tmp_path / "two" / "Maildir"
    for box in (one, two):
        create_maildir(box)
    real_rename, real_sync = os.rename, maildir_module.sync_directory

    def rename(source: str, target: str) -> None:
        if failing == "rename" and "/two/" in str(target):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_rename(source, target)

    def sync_directory(path: Path) -> None:
        if failing == "sync" and "/two/" in str(path):
            raise OSError(errno.EIO, "Input/output error")
        real_sync(path)

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(maildir_module, "sync_directory", sync_directory)
    with pytest.raises(MaildirError):
        deliver_many([Delivery(one, MESSAGE), Delivery(two, MESSAGE)])
    monkeypatch.undo()
    for box in (one, two):
        for sub in ("tmp", "new", "cur"):
            assert list((box / sub).iterdir()) == [], (box, sub)
        assert quota.usage(box) == (0, 0)


def test_old_tmp_leftovers_are_cleaned(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    create_maildir(maildir)
    stale = maildir / "tmp" / "crashed"
    stale.write_bytes(b"partial")
    os.utime(stale, (1, 1))
    fresh = maildir / "tmp" / "writing"
    fresh.write_bytes(b"now")
    assert clean_tmp(maildir) == 1
    assert not stale.exists() and fresh.exists()


def test_idle_waiters_hear_about_deliveries_from_threads(tmp_path: Path) -> None:
    import asyncio

    from courriel.mailstore.events import events

    maildir = tmp_path / "Maildir"
    create_maildir(maildir)

    async def scenario() -> None:
        event = events.subscribe(maildir)
        try:
            await asyncio.to_thread(lambda: (deliver(maildir, MESSAGE), events.notify(maildir)))
            await asyncio.wait_for(event.wait(), 2)
        finally:
            events.unsubscribe(maildir, event)

    asyncio.run(scenario())


def test_new_files_get_their_uids_in_the_order_they_arrived(tmp_path: Path) -> None:
    """Two deliveries in the same second whose microseconds have different lengths:
    the earlier one gets the lower UID (a sort of the names gave the opposite)."""
    from courriel.mailstore.index import FolderIndex

    maildir = tmp_path / "Maildir"
    create_maildir(maildir)
    for name, subject in (
        ("1796391565.M70988P1Q1R00000001.host,S=20", "first"),
        ("1796391565.M105000P1Q2R00000002.host,S=21", "second"),
        ("1796391566.M5P1Q3R00000003.host,S=20", "third"),
    ):
        (maildir / "new" / name).write_bytes(f"Subject: {subject}\r\n\r\n".encode())
    index = FolderIndex(maildir, maildir)
    subjects = [index.read_header(index.by_uid[uid]) for uid in index.uids]
    assert subjects == [
        b"Subject: first\r\n\r\n",
        b"Subject: second\r\n\r\n",
        b"Subject: third\r\n\r\n",
    ]
