"""News of new mail across processes: an SMTP worker process relays a delivery to the
main process only while a session there waits for news (the main process's flag)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from courriel.mailstore.events import MailboxEvents, watching_flag


def test_a_worker_relays_news_only_while_the_main_process_has_a_session_waiting(
    tmp_path: Path,
) -> None:
    address = str(tmp_path / "events.sock")
    inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # the main process's relay
    inbox.bind(address)
    inbox.setblocking(False)
    main, worker = MailboxEvents(), MailboxEvents()
    main.keep_watching_flag(address)
    worker.relay_to(address)
    maildir = tmp_path / "Maildir"
    maildir.mkdir()

    def relayed() -> list[bytes]:
        got = []
        while True:
            try:
                got.append(inbox.recv(4096))
            except BlockingIOError:
                return got

    worker.notify(maildir)
    assert relayed() == []  # nobody waits: the main process is not woken

    async def idle() -> None:
        event = main.subscribe(maildir)
        worker.notify(maildir)
        assert relayed() == [bytes(maildir)]
        main.unsubscribe(maildir, event)

    asyncio.run(idle())
    worker.notify(maildir)
    assert relayed() == []
    inbox.close()


def test_without_the_main_process_flag_a_worker_relays_every_change(tmp_path: Path) -> None:
    """(An older main process, or a flag file it could not make: as before.)"""
    address = str(tmp_path / "events.sock")
    inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    inbox.bind(address)
    worker = MailboxEvents()
    worker.relay_to(address)
    worker.notify(tmp_path)
    assert inbox.recv(4096) == bytes(tmp_path)
    Path(watching_flag(address)).write_bytes(b"")  # an empty file is no flag either
    other = MailboxEvents()
    other.relay_to(address)
    other.notify(tmp_path)
    assert inbox.recv(4096) == bytes(tmp_path)
    inbox.close()


def test_a_restarted_main_process_starts_with_nobody_waiting(tmp_path: Path) -> None:
    address = str(tmp_path / "events.sock")
    Path(watching_flag(address)).write_bytes(b"\x01")  # left by a killed main process
    MailboxEvents().keep_watching_flag(address)
    assert Path(watching_flag(address)).read_bytes() == b"\x00"
