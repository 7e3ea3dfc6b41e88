"""Courriel's socketmap service (Postfix's look-ups), spoken to directly: the answers
Postfix gets, and what a broken or hostile client gets (a closed connection, never a
crash or a hang of the others)."""

from __future__ import annotations

import socket

import pytest

from tests.edge.conftest import Edge

pytestmark = pytest.mark.slow


def netstring(text: bytes) -> bytes:
    return str(len(text)).encode() + b":" + text + b","


def ask(edge: Edge, *requests: bytes) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", edge.served.ports["socketmap"]), 30) as sock:
        sock.sendall(b"".join(netstring(r) for r in requests))
        stream, answers = sock.makefile("rb"), []
        for _ in requests:
            length = b""
            while (char := stream.read(1)) != b":":
                length += char
            answers.append(stream.read(int(length) + 1)[:-1])
        return answers


def test_the_maps_postfix_asks(edge: Edge) -> None:
    assert ask(
        edge,
        b"domain monsite.be",
        b"domain gmail.com",
        b"mailbox info@monsite.be",
        b"mailbox INFO+tag@MONSITE.BE",
        b"mailbox nobody@monsite.be",
        b"recipient info@monsite.be",
        b"recipient nobody@monsite.be",
        b"recipient gone@monsite.be",
        b"senders info@monsite.be",
        b"senders nobody@monsite.be",
        b"unknown-map x",
    ) == [
        b"OK monsite.be",
        b"NOTFOUND ",
        b"OK info@monsite.be",
        b"OK info+tag@monsite.be",
        b"NOTFOUND ",
        b"OK DUNNO",
        b"OK 550 5.1.1 No such user here",
        b"OK 550 5.1.1 Left us",
        b"OK monsite0001",
        b"NOTFOUND ",
        b"PERM unknown map unknown-map",
    ]


@pytest.mark.parametrize(
    "garbage",
    [b"hello\r\n", b"99999999:x,", b"5:abc", b"3:abcX", b"12345678901:"],
    ids=["not-a-netstring", "too-long", "cut-short", "no-comma", "absurd-length"],
)
def test_garbage_closes_only_that_connection(edge: Edge, garbage: bytes) -> None:
    with socket.create_connection(("127.0.0.1", edge.served.ports["socketmap"]), 30) as sock:
        sock.sendall(garbage)
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(100) == b""  # closed, nothing answered
    assert ask(edge, b"domain monsite.be") == [b"OK monsite.be"]  # the service goes on
