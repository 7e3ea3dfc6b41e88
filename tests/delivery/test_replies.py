"""Replies reach the client at once: no multi-line reply waits on Nagle's algorithm.

With Nagle on, the second line of a reply written line by line waits until the
client acknowledges the first, and clients delay that acknowledgement by 40 ms:
every EHLO of a real client (smtplib, Thunderbird) cost 50 ms. asyncio turns Nagle
off only on sockets that say they are TCP.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from courriel.runtime import bind
from tests.fixtures.net import free_port
from tests.fixtures.platform import STRONG, Platform


def test_listening_sockets_give_connections_without_nagle(monkeypatch) -> None:
    from courriel.config import get_config

    config = get_config()
    monkeypatch.setitem(config.smtp, "bind", "127.0.0.1")
    monkeypatch.setitem(config.smtp, "port", free_port())
    listener = bind(config, "smtp")
    seen: list[int] = []

    async def main() -> None:
        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_client, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname())
        while not seen:
            await asyncio.sleep(0.01)
        writer.close()
        server.close()

    asyncio.run(main())
    assert seen == [1]


def test_ehlo_reply_comes_in_one_write(platform: Platform) -> None:
    with socket.create_connection(("127.0.0.1", platform.port("smtp")), timeout=60) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        sock.sendall(b"EHLO client.example.org\r\n")
        first = sock.recv(65536)  # everything one write sent arrives together
    lines = first.split(b"\r\n")
    assert lines[0].startswith(b"250-")
    assert any(line.startswith(b"250 ") for line in lines), first
    assert b"250-PIPELINING" in first and b"250-ENHANCEDSTATUSCODES" in first


@pytest.fixture(scope="module")
def mailbox(platform: Platform) -> Platform:
    platform.courriel(
        "user", "create", "monsite.be", "--real", "Info", "--pass", STRONG, "--extra", "info"
    )  # monsite0001
    return platform


def read_reply(sock: socket.socket) -> bytes:
    """One whole reply (every line of a multi-line one), read byte by byte so that
    nothing after it is consumed; returns its last line."""
    line = b""
    while True:
        byte = sock.recv(1)
        assert byte, line
        line += byte
        if line.endswith(b"\r\n"):
            if line[3:4] == b" ":
                return line
            line = b""


def greet(sock: socket.socket) -> None:
    """Past the banner and EHLO."""
    read_reply(sock)
    sock.sendall(b"EHLO client.example.org\r\n")
    read_reply(sock)


def read_replies(sock: socket.socket, count: int) -> list[bytes]:
    """The next `count` reply lines, whatever packets they come in."""
    data = b""
    while data.count(b"\r\n") < count:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data.split(b"\r\n")[:count]


def test_pipelined_commands_get_their_replies_in_one_write(mailbox: Platform) -> None:
    """RFC 2920: the client sends MAIL, RCPT and DATA at once (Postfix's SMTP and LMTP
    clients do); the three replies come back together, in order, not one packet each."""
    with socket.create_connection(("127.0.0.1", mailbox.port("smtp")), timeout=60) as sock:
        greet(sock)
        sock.sendall(
            b"MAIL FROM:<alice@example.org>\r\n"
            b"RCPT TO:<info@monsite.be>\r\n"
            b"RCPT TO:<info@monsite.be>\r\n"
            b"DATA\r\n"
        )
        first = sock.recv(65536)  # everything one write sent arrives together
        assert [line[:3] for line in first.split(b"\r\n")[:-1]] == [b"250", b"250", b"250", b"354"]
        # The message, then QUIT in the same packet: the 250 for the message and the
        # 221 arrive, in order, before the connection closes.
        sock.sendall(b"Subject: pipelined\r\n\r\nhello\r\n.\r\nQUIT\r\n")
        replies = read_replies(sock, 2)
        assert replies[0].startswith(b"250 ") and replies[1].startswith(b"221 "), replies
        assert sock.recv(65536) == b""
    mailbox.wait_message("monsite0001", b"Subject: pipelined")


def test_a_refusal_in_a_pipelined_group_comes_in_its_place(mailbox: Platform) -> None:
    """Only 250s are held: a refused recipient's reply goes out with those before it,
    and every reply keeps its place."""
    with socket.create_connection(("127.0.0.1", mailbox.port("smtp")), timeout=60) as sock:
        greet(sock)
        sock.sendall(
            b"MAIL FROM:<alice@example.org>\r\n"
            b"RCPT TO:<nobody@monsite.be>\r\n"
            b"RCPT TO:<info@monsite.be>\r\n"
            b"RSET\r\n"
            b"NOOP\r\n"
        )
        replies = read_replies(sock, 5)
    assert [line[:3] for line in replies] == [b"250", b"550", b"250", b"250", b"250"], replies


def test_a_command_sent_with_starttls_is_not_run_inside_tls(mailbox: Platform) -> None:
    """STARTTLS injection (CVE-2011-0411): plain-text commands pipelined after
    STARTTLS are dropped with the plain-text stream, never taken as sent over TLS."""
    import ssl

    with socket.create_connection(("127.0.0.1", mailbox.port("smtp")), timeout=60) as sock:
        greet(sock)
        sock.sendall(b"STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
        assert read_replies(sock, 1)[0].startswith(b"220 ")
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with context.wrap_socket(sock, server_hostname="mx.monsite.be") as tls:
            tls.sendall(b"EHLO client.example.org\r\n")
            assert read_reply(tls).startswith(b"250 ")
            tls.sendall(b"MAIL FROM:<alice@example.org>\r\n")
            assert read_replies(tls, 1)[0].startswith(b"250 ")  # not 503 nested MAIL
