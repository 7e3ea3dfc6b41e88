"""The delivery journal: group-committed records, applied into Maildirs, replayed
exactly once after a crash, a cut record ignored."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.delivery.journal import Copy, Journal, Record, decode_segment
from courriel.mailstore.layout import create_maildir
from courriel.mailstore.maildir import unique_name


def record(maildir: Path, n: int) -> Record:
    content = f"Subject: {n}\r\n\r\nbody {n}\r\n".encode()
    prefix = f"Delivered-To: info{n}@monsite.be\r\n".encode()
    copy = Copy(str(maildir), unique_name(len(prefix) + len(content)), prefix, 1)
    return Record(f"Q{n}", [copy], content)


def files(maildir: Path) -> list[bytes]:
    return sorted(p.read_bytes() for d in ("new", "cur") for p in (maildir / d).iterdir())


def test_without_a_worker_records_are_applied_at_once(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    create_maildir(maildir)
    journal = Journal(tmp_path / "journal")
    journal.commit(record(maildir, 1))
    assert files(maildir) == [b"Delivered-To: info1@monsite.be\r\nSubject: 1\r\n\r\nbody 1\r\n"]
    assert list((tmp_path / "journal").glob("*.seg")) == []


@contextlib.contextmanager
def running_journal(tmp_path: Path) -> Iterator[tuple[Path, Journal]]:
    """A Maildir and a journal with its worker running, stopped on the way out."""
    maildir = tmp_path / "Maildir"
    create_maildir(maildir)
    journal = Journal(tmp_path / "journal")
    journal.start()
    try:
        yield maildir, journal
    finally:
        journal.stop()


def test_worker_applies_and_removes_segments(tmp_path: Path) -> None:
    with running_journal(tmp_path) as (maildir, journal):
        for n in range(50):
            journal.commit(record(maildir, n))
    assert len(files(maildir)) == 50
    assert list((tmp_path / "journal").glob("*.seg")) == []


def test_replay_after_a_crash_delivers_each_copy_once(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    create_maildir(maildir)
    directory = tmp_path / "journal"
    directory.mkdir()
    records = [record(maildir, n) for n in range(3)]
    # What a killed process leaves: a segment with three records, the first already
    # applied (and read by a client: moved to cur/ with a flag), the last cut short.
    data = b"".join(r.encode() for r in records)
    segment = directory / f"00000000000000000001-{2**22 + 12345}-1.seg"
    segment.write_bytes(data[:-10])
    first = records[0].copies[0]
    (maildir / "cur" / f"{first.name}:2,S").write_bytes(first.prefix + records[0].content)
    assert len(decode_segment(segment.read_bytes())) == 2
    replayed = Journal(directory).recover()
    assert replayed == 2 and not segment.exists()
    bodies = files(maildir)
    assert len(bodies) == 2  # record 0 once (not again), record 1 written, record 2 ignored
    assert sum(b"body 0" in body for body in bodies) == 1
    assert sum(b"body 1" in body for body in bodies) == 1
    # Replaying again changes nothing.
    assert Journal(directory).recover() == 0
    assert [name for name in os.listdir(directory) if name.endswith(".seg")] == []


def test_with_a_worker_the_copy_is_in_the_maildir_when_commit_returns(tmp_path: Path) -> None:
    """ "250" means visible: a new IMAP or POP3 session right after sees the message."""
    with running_journal(tmp_path) as (maildir, journal):
        for n in range(20):
            journal.commit(record(maildir, n))
            assert len(files(maildir)) == n + 1


def test_replay_writes_again_a_copy_that_a_machine_crash_left_empty(tmp_path: Path) -> None:
    """After a power cut, a file whose name reached the disk but not its data is empty:
    its journal record writes it whole again."""
    maildir = tmp_path / "Maildir"
    create_maildir(maildir)
    directory = tmp_path / "journal"
    directory.mkdir()
    written = record(maildir, 7)
    (directory / f"00000000000000000001-{2**22 + 12345}-1.seg").write_bytes(written.encode())
    (maildir / "new" / written.copies[0].name).write_bytes(b"")
    assert Journal(directory).recover() == 1
    assert files(maildir) == [b"Delivered-To: info7@monsite.be\r\nSubject: 7\r\n\r\nbody 7\r\n"]


def test_the_segment_name_is_flushed_once_and_each_commit_flushes_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay needs the segment's directory entry and its records: the entry is made
    durable when the segment is created, each commit then flushes the file's data only
    (fdatasync: no file-system journal commit for the times on every message)."""
    import courriel.delivery.journal as journal_module

    flushed: list[tuple[str, str]] = []
    real_fdatasync, real_fsync_dir = os.fdatasync, journal_module.fsync_dir

    def fdatasync(fd: int) -> None:
        flushed.append(("data", os.readlink(f"/proc/self/fd/{fd}")))
        real_fdatasync(fd)

    def fsync_dir(path: Path) -> None:
        flushed.append(("directory", str(path)))
        real_fsync_dir(path)

    monkeypatch.setattr(journal_module.os, "fdatasync", fdatasync)
    monkeypatch.setattr(journal_module, "fsync_dir", fsync_dir)
    with running_journal(tmp_path) as (maildir, journal):
        for n in range(3):
            journal.commit(record(maildir, n))
        segment = next((tmp_path / "journal").glob("*.seg"))
    assert flushed[:4] == [
        ("directory", str(tmp_path / "journal")),
        ("data", str(segment)),
        ("data", str(segment)),
        ("data", str(segment)),
    ]
