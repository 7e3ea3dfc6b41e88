"""Large messages never sit whole in the server's memory: an IMAP APPEND of 20 MB goes
to the Maildir's tmp/ as it arrives, FETCH and POP3 RETR send it from its file piece by
piece. Measured on `courriel serve` itself: the peak resident memory (VmHWM, reset
before each step) grows by less than 16 MB."""

from __future__ import annotations

import imaplib
import poplib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.access.conftest import Service
from tests.access.differential.runner import big_message

pytestmark = pytest.mark.slow
SIZE = 20_000_000
GROWTH_LIMIT = 16 * 1024 * 1024


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for process {pid}")


def peak_growth(pid: int, action: Callable[[], object]) -> int:
    """How far the resident memory of `pid` rises above where it was while `action`
    runs (the kernel's high-water mark, reset first)."""
    before = _status(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := current RSS
    action()
    return _status(pid, "VmHWM") - before


def test_a_20_mb_message_goes_through_imap_and_pop3_without_being_held(
    service: Service,
) -> None:
    pid = service.served.proc.pid
    data = big_message(SIZE)
    client = imaplib.IMAP4("127.0.0.1", service.ports["imap"], timeout=120)
    client.login(service.login, service.password)
    # warm-up: every code path once, with a small message
    client.append("INBOX", None, None, big_message(2000))
    client.select("INBOX")
    client.fetch("1", "(BODY.PEEK[])")

    growth = peak_growth(pid, lambda: client.append("INBOX", "(\\Seen)", None, data))
    assert growth < GROWTH_LIMIT, f"APPEND of 20 MB: +{growth // 1024} KiB resident"
    client.noop()
    fetched: list[bytes] = []

    def fetch() -> None:
        typ, answer = client.fetch("2", "(BODY.PEEK[])")
        assert typ == "OK"
        fetched.append(answer[0][1])

    growth = peak_growth(pid, fetch)
    assert growth < GROWTH_LIMIT, f"FETCH of 20 MB: +{growth // 1024} KiB resident"
    assert fetched[0] == data
    client.logout()

    pop = poplib.POP3("127.0.0.1", service.ports["pop3"], timeout=120)
    pop.user(service.login)
    pop.pass_(service.password)
    retrieved: list[bytes] = []
    growth = peak_growth(pid, lambda: retrieved.append(b"\r\n".join(pop.retr(2)[1]) + b"\r\n"))
    assert growth < GROWTH_LIMIT, f"POP3 RETR of 20 MB: +{growth // 1024} KiB resident"
    assert retrieved[0] == data
    pop.quit()


def test_an_append_is_written_to_tmp_as_it_arrives(service: Service) -> None:
    """Half of a 10 MB message sent: it is already on disk in tmp/, growing; the rest
    sent: it is in the mailbox and tmp/ is empty again."""
    data = big_message(10_000_000)
    tmp = service.maildir / "tmp"
    with socket.create_connection(("127.0.0.1", service.ports["imap"]), timeout=60) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        sock.sendall(f"a LOGIN {service.login} {service.password}\r\n".encode())
        assert stream.readline().startswith(b"a OK")
        sock.sendall(b"b APPEND INBOX {%d}\r\n" % len(data))
        assert stream.readline().startswith(b"+")
        sock.sendall(data[: len(data) // 2])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sizes = [p.stat().st_size for p in tmp.iterdir()]
            if sizes and max(sizes) >= len(data) // 4:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"nothing growing in {tmp}: {list(tmp.iterdir())}")
        sock.sendall(data[len(data) // 2 :] + b"\r\n")
        assert stream.readline().startswith(b"b OK [APPENDUID ")
        stream.close()
    assert list(tmp.iterdir()) == []
    stored = list((service.maildir / "cur").iterdir())
    assert len(stored) == 1 and stored[0].read_bytes() == data
