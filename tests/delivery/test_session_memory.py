"""A finished SMTP/LMTP session is freed when its connection closes, by reference
counting alone: the cyclic collector runs seldom in `courriel serve`
(`runtime.COLLECT_YOUNG_EVERY`), and dead sessions waiting for it (reader, transport,
envelope, a CancelledError and its frames each) made the heap of a busy server grow
(issue 13). Real protocol objects on a real loopback socket, a real client."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import uvloop

from courriel.delivery.smtp.protocol import ConnectionLimiter, CourrielLMTP, CourrielSMTP


class Handler:
    """No hooks: aiosmtpd's own answers (250 to everything, DATA discarded)."""

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


@pytest.fixture
def no_cyclic_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _session(
    kind: type[CourrielSMTP], tmp_path: Path, client: Callable[..., Awaitable[None]]
) -> list[weakref.ref[CourrielSMTP]]:
    made: list[weakref.ref[CourrielSMTP]] = []
    limiter = ConnectionLimiter(0)

    def factory() -> CourrielSMTP:
        protocol = kind(Handler(), limiter=limiter, spool=tmp_path, hostname="mx.test")
        made.append(weakref.ref(protocol))
        return protocol

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()  # banner
    await client(reader, writer, "LHLO" if kind is CourrielLMTP else "EHLO")
    writer.close()
    await writer.wait_closed()
    for _ in range(100):  # the server's side of the close, then the task's end
        if made and made[0]() is None:
            break
        await asyncio.sleep(0.02)
    server.close()
    await server.wait_closed()
    assert len(made) == 1
    return made


async def _replies(reader: asyncio.StreamReader) -> list[bytes]:
    lines = [await reader.readline()]
    while lines[-1][3:4] == b"-":
        lines.append(await reader.readline())
    return lines


async def _mail_then_quit(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hello: str
) -> None:
    for command in (f"{hello} client.test", "MAIL FROM:<a@example.org>", "RCPT TO:<b@monsite.be>"):
        writer.write(command.encode() + b"\r\n")
        assert (await _replies(reader))[-1][:1] == b"2"
    writer.write(b"DATA\r\n")
    assert (await reader.readline()).startswith(b"354")
    writer.write(b"Subject: hi\r\n\r\n" + b"x" * 100_000 + b"\r\n.\r\n")
    assert (await _replies(reader))[-1].startswith(b"250")
    writer.write(b"QUIT\r\n")
    assert (await reader.readline()).startswith(b"221")


async def _drop_mid_data(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hello: str
) -> None:
    """A client that goes away in the middle of DATA, without QUIT."""
    for command in (f"{hello} client.test", "MAIL FROM:<a@example.org>", "RCPT TO:<b@monsite.be>"):
        writer.write(command.encode() + b"\r\n")
        await _replies(reader)
    writer.write(b"DATA\r\n")
    await reader.readline()
    writer.write(b"Subject: cut\r\n\r\n" + b"y" * 50_000)
    await writer.drain()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])  # [general] event_loop
@pytest.mark.parametrize("kind", [CourrielSMTP, CourrielLMTP])
@pytest.mark.parametrize("client", [_mail_then_quit, _drop_mid_data])
def test_a_closed_session_is_freed_without_the_cyclic_collector(
    loop: str,
    kind: type[CourrielSMTP],
    client: Callable[..., Awaitable[None]],
    tmp_path: Path,
    no_cyclic_collector: None,
) -> None:
    factory = uvloop.new_event_loop if loop == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        made = runner.run(_session(kind, tmp_path, client))
        assert made[0]() is None, "the session's protocol object is still alive"
