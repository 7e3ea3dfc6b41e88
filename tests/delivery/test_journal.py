"""The delivery journal: group-committed records, applied into Maildirs, replayed
exactly once after a crash, a cut record ignored."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.delivery.journal import Copy, Journal, Record, decode_segment
from courriel.mailstore.layout import create_maildir
from courriel.mailstore.maildir import unique_name
from tests.fixtures.waiting import wait_until


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


def big_record(maildir: Path, n: int, size: int) -> Record:
    content = f"Subject: {n}\r\n\r\n".encode() + b"x" * size + b"\r\n"
    prefix = f"Delivered-To: info{n}@monsite.be\r\n".encode()
    copy = Copy(str(maildir), unique_name(len(prefix) + len(content)), prefix, 1)
    return Record(f"Q{n}", [copy], content)


def retired(segment: Path) -> bool:
    """Its records all durable in the Maildirs, a segment kept for use again starts
    with zeros (its first record wiped)."""
    return segment.read_bytes()[:4] == b"\0\0\0\0"


def crash_copy(journal_dir: Path, into: Path) -> Path:
    """The journal directory as a crash of the machine would leave it now."""
    into.mkdir()
    for segment in journal_dir.glob("*.seg"):
        (into / segment.name).write_bytes(segment.read_bytes())
    return into


def test_a_durable_segment_is_used_again_and_its_old_records_never_come_back(
    tmp_path: Path,
) -> None:
    """Writing over blocks the segment has is what makes each flush cheap; what the
    earlier use left further in the file must never be replayed: a message the user
    has deleted since does not come back after a crash."""
    with running_journal(tmp_path) as (maildir, journal):
        for n in range(3):
            journal.commit(big_record(maildir, n, 20_000))
        [segment] = (tmp_path / "journal").glob("*.seg")
        size = segment.stat().st_size
        wait_until(lambda: retired(segment), "the segment to be retired")
        # A crash now: the spare replays as nothing.
        for path in (maildir / "new").iterdir():
            path.unlink()  # the user deleted the three messages
        assert Journal(crash_copy(tmp_path / "journal", tmp_path / "crash1")).recover() == 0
        assert files(maildir) == []
        # Used again: same file, written from its first byte, not grown.
        journal.commit(record(maildir, 9))
        assert list((tmp_path / "journal").glob("*.seg")) == [segment]
        assert segment.stat().st_size == size
        assert [r.id for r in decode_segment(segment.read_bytes())] == ["Q9"]
        # A crash now (the copy of Q9 lost with the machine): Q9 alone comes back.
        for path in (maildir / "new").iterdir():
            path.unlink()
        assert Journal(crash_copy(tmp_path / "journal", tmp_path / "crash2")).recover() == 1
        assert files(maildir) == [b"Delivered-To: info9@monsite.be\r\nSubject: 9\r\n\r\nbody 9\r\n"]
    assert list((tmp_path / "journal").glob("*.seg")) == []  # stop deletes the spares


def test_records_of_an_earlier_use_stop_a_replay(tmp_path: Path) -> None:
    old = [big_record(tmp_path, n, 500).encode(incarnation=1) for n in range(4)]
    new = big_record(tmp_path, 7, 10).encode(incarnation=2)
    data = bytearray(b"".join(old))
    data[: len(new)] = new
    assert [r.id for r in decode_segment(bytes(data))] == ["Q7"]
    # Even where the new record ends exactly where an old one began.
    aligned = new + b"".join(old[1:])
    assert [r.id for r in decode_segment(aligned)] == ["Q7"]
    assert decode_segment(bytes(4096) + b"".join(old)) == []


def test_a_segment_of_the_first_version_is_still_replayed(tmp_path: Path) -> None:
    """Records written before segments were used again (no incarnation), left by a
    crash before an upgrade."""
    import struct
    import zlib

    maildir = tmp_path / "Maildir"
    create_maildir(maildir)
    directory = tmp_path / "journal"
    directory.mkdir()
    legacy = b""
    for n in (1, 2):
        header, _crc = record(maildir, n).encoded()
        content = record(maildir, n).content
        crc = zlib.crc32(content, zlib.crc32(header))
        legacy += struct.pack(">4sIII", b"CJ01", len(header), len(content), crc) + header
        legacy += content
    (directory / f"00000000000000000001-{2**22 + 12345}-1.seg").write_bytes(legacy)
    assert Journal(directory).recover() == 2
    assert len(files(maildir)) == 2


def test_many_records_through_many_uses_of_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records of every size across many seals and uses again: each message once, a
    crash at any moment replays no record twice, few files are kept."""
    import random

    from courriel.delivery import journal as journal_module

    monkeypatch.setattr(journal_module, "SPARE_SEGMENTS", 2)
    rng = random.Random(5)
    seen: set[int] = set()
    with running_journal(tmp_path) as (maildir, journal):
        n = 0
        for _burst in range(16):
            for _ in range(rng.randint(1, 40)):
                journal.commit(big_record(maildir, n, rng.choice([10, 3000, 60_000, 200_000])))
                n += 1
            segments = list((tmp_path / "journal").glob("*.seg"))
            ids = [r.id for s in segments for r in decode_segment(s.read_bytes())]
            assert len(ids) == len(set(ids))
            assert len(segments) <= journal_module.SPARE_SEGMENTS + 3
            seen.update(s.name for s in segments)
            time.sleep(rng.choice([0, 0.7, 0.7]))
    assert len(files(maildir)) == n
    assert sorted(
        int(b.split(b"\r\n")[0].split(b"info")[1].split(b"@")[0]) for b in files(maildir)
    ) == list(range(n))
    # Files used again, not one new one per seal (a seal every 0.5 s when busy).
    assert len(seen) <= journal_module.SPARE_SEGMENTS + 3
    assert list((tmp_path / "journal").glob("*.seg")) == []


@pytest.mark.parametrize("reached", [4, 12, 16, 20, 24])
def test_a_write_torn_in_its_head_never_revives_a_record_of_an_earlier_use(
    tmp_path: Path, reached: int
) -> None:
    """Power lost while a record is written over one of the segment's earlier use at
    the same offset: only its first `reached` bytes made it to the disk (a sector
    boundary inside the head). The earlier record, deleted by its user since, must
    not be read as one of this use."""

    def same_size(n: int, incarnation: int) -> bytes:
        content = b"Subject: %d\r\n\r\n" % n + b"x" * 400 + b"\r\n"
        copy = Copy(str(tmp_path), f"1700000000.M{n}P1.host,S=425", b"", 1)
        return Record(f"Q{n}", [copy], content).encode(incarnation)

    earlier = [same_size(n, 1) for n in range(3)]
    acknowledged, torn = same_size(7, 2), same_size(8, 2)
    on_disk = acknowledged + torn[:reached] + earlier[1][reached:] + earlier[2]
    assert [r.id for r in decode_segment(on_disk)] == ["Q7"]
    assert [r.id for r in decode_segment(b"".join(earlier))] == ["Q0", "Q1", "Q2"]


def test_without_a_worker_concurrent_commits_each_flush_a_file_still_open(
    tmp_path: Path,
) -> None:
    """Without the worker (command line), each commit applies its copy and retires the
    segment when everything in it is applied. A commit that wrote into the segment
    meanwhile must keep it: before, it then flushed a closed file (EBADF) or another
    one that had taken its descriptor number."""
    import threading

    maildir = tmp_path / "Maildir"
    create_maildir(maildir)
    journal = Journal(tmp_path / "journal")
    errors: list[BaseException] = []

    def session(worker: int) -> None:
        for n in range(300):
            try:
                journal.commit(record(maildir, worker * 1000 + n))
            except OSError as error:
                errors.append(error)

    threads = [threading.Thread(target=session, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(files(maildir)) == 8 * 300
    assert list((tmp_path / "journal").glob("*.seg")) == []


def test_the_after_apply_hook_runs_on_the_worker_only_for_records_that_ask_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every copy is announced to IDLE sessions at once; the hook (quota warnings, which
    may query the database) runs on the journal's thread, for a record that needs it."""
    import threading

    from courriel.delivery import journal as journal_module

    announced: list[str] = []
    monkeypatch.setattr(journal_module.events, "notify", lambda path: announced.append(str(path)))
    hooked: list[tuple[str, str]] = []
    with running_journal(tmp_path) as (maildir, journal):
        journal.after_apply = lambda r: hooked.append((r.id, threading.current_thread().name))
        quiet = record(maildir, 1)
        quiet.needs_after_apply = False
        journal.commit(quiet)
        assert announced == [str(maildir)]  # before commit returns
        journal.commit(record(maildir, 2))
        assert announced == [str(maildir)] * 2
    assert hooked == [("Q2", "delivery-journal")]
    assert len(files(maildir)) == 2
