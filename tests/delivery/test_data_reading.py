"""DATA as it really arrives: in pieces cut anywhere. Wherever a piece ends, the
dot-stuffing is undone on every line that starts with a dot, and only CRLF.CRLF ends
the message."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from courriel.delivery.smtp import protocol
from tests.fixtures.platform import STRONG, Platform

BODY = (
    b".a first line that starts with a dot, long enough to be cut in its middle\r\n"
    b"plain\r\n"
    b"..two dots\r\n"
    b".\r\n"
    b"last\r\n"
)


def stuffed(content: bytes) -> bytes:
    """On the wire (RFC 5321 4.5.2): a dot more at the start of a line that has one."""
    return b"".join(
        b"." + line if line.startswith(b".") else line for line in content.splitlines(True)
    )


@pytest.fixture(scope="module")
def target(platform: Platform) -> Platform:
    platform.courriel(
        "user", "create", "monsite.be", "--real", "Info", "--pass", STRONG, "--extra", "info"
    )
    return platform


def send_in_pieces(platform: Platform, pieces: list[bytes]) -> str:
    """One message whose DATA goes in `pieces`, each a read of its own for the server."""
    with socket.create_connection(("127.0.0.1", platform.port("smtp")), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = sock.makefile("rb")
        stream.readline()
        sock.sendall(b"EHLO pieces.example.org\r\n")
        while stream.readline()[3:4] != b" ":
            pass
        for command in (b"MAIL FROM:<a@example.org>", b"RCPT TO:<info@monsite.be>", b"DATA"):
            sock.sendall(command + b"\r\n")
            assert stream.readline()[:1] in (b"2", b"3")
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.03)
        return stream.readline().decode().strip()


def test_a_message_cut_at_every_byte_arrives_unstuffed(target: Platform) -> None:
    for cut in range(len(stuffed(BODY)) + 3):
        content = b"Subject: cut %d\r\n\r\n" % cut + BODY
        wire = stuffed(content) + b".\r\n"
        at = len(wire) - len(stuffed(BODY)) - 3 + cut
        assert send_in_pieces(target, [wire[:at], wire[at:]]).startswith("250")
        stored = target.wait_message("monsite0001", b"Subject: cut %d\r\n" % cut)
        assert stored.endswith(b"\r\n" + content), cut


def test_the_end_marker_cut_in_three(target: Platform) -> None:
    content = b"Subject: three\r\n\r\n" + BODY
    wire = stuffed(content) + b".\r\n"
    for first in range(len(wire) - 6, len(wire) - 1):
        for second in range(first + 1, len(wire)):
            pieces = [wire[:first], wire[first:second], wire[second:]]
            assert send_in_pieces(target, pieces).startswith("250")
    count = sum(b"Subject: three\r\n" in m for m in target.messages("monsite0001"))
    assert count == sum(len(range(f + 1, len(wire))) for f in range(len(wire) - 6, len(wire) - 1))
    assert all(
        m.endswith(b"\r\n" + content)
        for m in target.messages("monsite0001")
        if b"Subject: three\r\n" in m
    )


def test_one_endless_line_beyond_the_size_limit_is_refused_at_its_end(target: Platform) -> None:
    """No line end for more than the whole size limit (50 MB): the server keeps only
    the last bytes, and still sees the end marker after it."""
    line = b"z" * (51 * 1024 * 1024)
    reply = send_in_pieces(target, [b"Subject: endless\r\n\r\n" + line, b"\r\n.\r\n"])
    assert reply.startswith("552 5.3.4")
    assert not [m for m in target.messages("monsite0001") if b"Subject: endless" in m]


class _Reader:
    """What the DATA reader uses of asyncio's StreamReader, handing out `chunks` one
    read at a time (a socket cannot be made to cut reads at chosen bytes)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks, self._buffer = list(chunks), bytearray()

    async def read(self, n: int) -> bytes:
        if self._buffer:
            out = bytes(self._buffer[:n])
            del self._buffer[:n]
            return out
        if not self.chunks:
            return b""
        chunk = self.chunks.pop(0)
        if len(chunk) > n:
            self.chunks.insert(0, chunk[n:])
        return chunk[:n]


def _read(chunks: list[bytes], limit: int, tmp_path: Path) -> tuple[Any, bytes]:
    session: Any = object.__new__(protocol.CourrielSMTP)
    session._reader = _Reader(chunks)
    session.data_size_limit = limit
    session._spool = tmp_path
    session.event_handler = None
    session.envelope = type("Envelope", (), {})()
    session._reset_timeout = lambda: None
    content, _size = asyncio.run(session._read_data())
    return content, bytes(session._reader._buffer) + b"".join(session._reader.chunks)


def _reference(wire: bytes, limit: int) -> tuple[bytes | None, bytes] | None:
    """RFC 5321 read plainly: up to the first CRLF.CRLF (the command line's CRLF
    counts), a dot removed at the start of each line; what follows is for the command
    reader. None when the wire has no end marker."""
    marked = b"\r\n" + wire
    end = marked.find(b"\r\n.\r\n")
    if end < 0:
        return None
    body = marked[: end + 2].replace(b"\r\n.", b"\r\n")[2:]
    return (None if limit and len(body) > limit else body), marked[end + 5 :]


def test_the_reader_agrees_with_a_plain_reading_however_the_bytes_are_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random wires of line ends, lone CRs and LFs, dots and end markers, cut at random
    and read a few bytes at a time or in big reads, with and without a size limit:
    the same message and the same leftover as the plain reading."""
    pieces = [b"\r\n", b".", b"\r", b"\n", b"a", b"\r\n.", b"\r\n.\r\n", b"..", b"x" * 7]
    rng = random.Random(2033)
    checked = 0
    while checked < 3000:
        wire = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        wire += b"\r\n.\r\n" + b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 5)))
        limit = rng.choice([0, 0, 0, 3, 10, 20, 1000])
        expected = _reference(wire, limit)
        if expected is None:
            continue
        cuts = sorted(rng.sample(range(1, len(wire)), min(len(wire) - 1, rng.randint(0, 8))))
        chunks = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
        monkeypatch.setattr(protocol, "READ_CHUNK", rng.choice([1, 2, 3, 5, 7, 256 * 1024]))
        assert _read(chunks, limit, tmp_path) == expected, (wire, chunks, limit)
        checked += 1
