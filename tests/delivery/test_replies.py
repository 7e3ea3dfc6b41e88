"""Replies reach the client at once: no multi-line reply waits on Nagle's algorithm.

With Nagle on, the second line of a reply written line by line waits until the
client acknowledges the first, and clients delay that acknowledgement by 40 ms:
every EHLO of a real client (smtplib, Thunderbird) cost 50 ms. asyncio turns Nagle
off only on sockets that say they are TCP.
"""

from __future__ import annotations

import asyncio
import socket

from courriel.runtime import bind
from tests.fixtures.net import free_port
from tests.fixtures.platform import Platform


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
