"""News of new mail across processes: an SMTP worker process relays a delivery to the
main process only while a session there waits for news (the main process's flag)."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.mailstore.events import MailboxEvents, watching_flag


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[socket.socket]:
    """The main process's end of the relay."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "events.sock"))
    sock.setblocking(False)
    yield sock
    sock.close()


def relayed(inbox: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(inbox.recv(4096))
        except BlockingIOError:
            return got


def test_a_worker_relays_news_only_while_the_main_process_has_a_session_waiting(
    tmp_path: Path, inbox: socket.socket
) -> None:
    address = str(tmp_path / "events.sock")
    main, worker = MailboxEvents(), MailboxEvents()
    main.keep_watching_flag(address)
    worker.relay_to(address, os.getpid())  # (here the "main process" is this one)
    maildir = tmp_path / "Maildir"
    maildir.mkdir()
    worker.notify(maildir)
    assert relayed(inbox) == []  # nobody waits: the main process is not woken

    async def idle() -> None:
        event = main.subscribe(maildir)
        worker.notify(maildir)
        assert relayed(inbox) == [bytes(maildir)]
        main.unsubscribe(maildir, event)

    asyncio.run(idle())
    worker.notify(maildir)
    assert relayed(inbox) == []


def test_without_its_main_process_flag_a_worker_relays_every_change(
    tmp_path: Path, inbox: socket.socket
) -> None:
    """No flag (an older main process), an empty one, or one another process keeps (a
    flag left by an earlier main process, saying nobody waits): every change goes."""
    address = str(tmp_path / "events.sock")
    flag = Path(watching_flag(address))
    for content in (None, b"", b"\x000000000001"):
        if content is not None:
            flag.write_bytes(content)
        worker = MailboxEvents()
        worker.relay_to(address, os.getpid())
        worker.notify(tmp_path)
        assert relayed(inbox) == [bytes(tmp_path)], content


def test_a_restarted_main_process_starts_with_nobody_waiting(tmp_path: Path) -> None:
    address = str(tmp_path / "events.sock")
    flag = Path(watching_flag(address))
    flag.write_bytes(b"\x01" + b"9" * 12)  # left by a killed main process
    flag.chmod(0o644)
    MailboxEvents().keep_watching_flag(address)
    assert flag.read_bytes() == b"\x00" + b"%010d" % os.getpid()
    assert flag.stat().st_mode & 0o777 == 0o600


def test_a_flag_that_cannot_be_written_is_removed_and_every_change_relayed(
    tmp_path: Path, inbox: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk when the main process starts: an error in its log, not a crash (a
    flag written through a memory map would have been SIGBUS), and no stale flag."""
    address = str(tmp_path / "events.sock")
    flag = Path(watching_flag(address))
    flag.write_bytes(b"\x00" + b"%010d" % os.getpid())  # stale, and saying nobody waits

    def disk_full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(os, "pwrite", disk_full)
        MailboxEvents().keep_watching_flag(address)
    assert not flag.exists()
    worker = MailboxEvents()
    worker.relay_to(address, os.getpid())
    worker.notify(tmp_path)
    assert relayed(inbox) == [bytes(tmp_path)]


def test_a_flag_update_that_fails_leaves_every_change_relayed(
    tmp_path: Path, inbox: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = str(tmp_path / "events.sock")
    main, worker = MailboxEvents(), MailboxEvents()
    main.keep_watching_flag(address)
    worker.relay_to(address, os.getpid())
    real_pwrite, calls = os.pwrite, []

    def first_fails(fd: int, data: bytes, offset: int) -> int:
        calls.append(data)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    async def idle() -> None:
        with monkeypatch.context() as patched:
            patched.setattr(os, "pwrite", first_fails)
            event = main.subscribe(tmp_path)
        main.unsubscribe(tmp_path, event)

    asyncio.run(idle())
    worker.notify(tmp_path)
    assert relayed(inbox) == [bytes(tmp_path)]  # the flag was left at "waiting"


def test_news_for_a_maildir_reached_through_a_link_reaches_its_session(tmp_path: Path) -> None:
    """Sessions subscribe by the real path; deliveries may name the Maildir through a
    link (a mail root that is one): the same Maildir, the same news, every time."""
    real = tmp_path / "disk" / "Maildir"
    real.mkdir(parents=True)
    (tmp_path / "mail").symlink_to(tmp_path / "disk")
    events = MailboxEvents()

    async def idle() -> None:
        event = events.subscribe(real)
        for _ in range(2):  # (the second time from what was kept)
            events.notify(tmp_path / "mail" / "Maildir")
            await asyncio.wait_for(event.wait(), 1)
            event.clear()
        events.unsubscribe(real, event)

    asyncio.run(idle())
