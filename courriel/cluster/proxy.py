"""IMAP and POP3 logins for a mailbox held by another hosting server, handed to it
like Dovecot's proxy: the client signs in here (same password check, same
throttling), this node signs in for it at the mailbox's node over TLS (the node's
certificate checked as for mail, see peers.py) with the same credentials, then
passes the bytes both ways until either side closes. Clients can thus use one host
name for the whole platform.

The home node's implicit-TLS port (`imaps`, `pop3s`) is the one it published in
its heartbeat.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from dataclasses import dataclass

from courriel.access.listener import Stream
from courriel.cluster.peers import PeerUntrusted, check_pinned, client_context
from courriel.cluster.placement import Peer, peer

log = logging.getLogger("courriel.cluster")
TIMEOUT = 15.0
PIPE_CHUNK = 256 * 1024


class ProxyError(Exception):
    """The home node could not be reached or refused the login; `refused` when it
    answered that the credentials are wrong (a password changed meanwhile)."""

    def __init__(self, message: str, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass
class Upstream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    greeting: str  # the home node's answer to the login (POP3 passes it on)


def _target(server_id: int, service: str) -> tuple[Peer, int] | None:
    from courriel.cluster.models import Node

    found = peer(server_id)
    status = Node.objects.filter(server_id=server_id).values_list("status", flat=True).first()
    bound = ((status or {}).get("services") or {}).get(service, "")
    port = bound.rpartition(":")[2]
    if found is None or not port.isdigit():
        return None
    return found, int(port)


async def _connect(server_id: int, service: str) -> tuple[Peer, Upstream]:
    from courriel.dbthread import run_db

    target = await run_db(_target, server_id, service)
    if target is None:
        raise ProxyError(f"hosting server {server_id} publishes no {service} port")
    node, port = target
    context, by_ca = client_context()
    try:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection(
                node.address, port, ssl=context, server_hostname=node.hostname if by_ca else ""
            )
    except (OSError, TimeoutError) as error:
        raise ProxyError(f"{node.name} ({node.address}:{port}): {error}") from None
    if not by_ca:
        try:
            check_pinned(writer.get_extra_info("ssl_object"), node)
        except PeerUntrusted as error:
            writer.close()
            raise ProxyError(str(error)) from None
    return node, Upstream(reader, writer, "")


async def _line(upstream: Upstream) -> str:
    async with asyncio.timeout(TIMEOUT):
        line = await upstream.reader.readline()
    if not line:
        raise ConnectionError("closed")
    return line.decode("utf-8", "replace").rstrip("\r\n")


def _plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")


async def _sign_in(
    server_id: int, service: str, command: str, ok: tuple[str, ...], tag: str = ""
) -> Upstream:
    node, upstream = await _connect(server_id, service)
    try:
        await _line(upstream)  # the greeting
        upstream.writer.write(command.encode() + b"\r\n")
        while True:
            line = await _line(upstream)
            if not tag or line.startswith(tag + " "):
                break
        answer = line[len(tag) + 1 :] if tag else line
        if not answer.startswith(ok):
            raise ProxyError(f"{node.name} refused the login: {answer[:200]}", refused=True)
    except (OSError, ConnectionError, TimeoutError) as error:
        upstream.writer.close()
        raise ProxyError(f"{node.name}: {error or 'closed'}") from None
    except ProxyError:
        upstream.writer.close()
        raise
    upstream.greeting = answer
    log.info("login handed to %s (%s)", node.name, service)
    return upstream


async def imap_sign_in(server_id: int, user: str, password: str) -> Upstream:
    tag = "courriel-proxy"
    return await _sign_in(
        server_id, "imaps", f"{tag} AUTHENTICATE PLAIN {_plain(user, password)}", ("OK",), tag
    )


async def pop3_sign_in(server_id: int, user: str, password: str) -> Upstream:
    return await _sign_in(server_id, "pop3s", f"AUTH PLAIN {_plain(user, password)}", ("+OK",))


async def pipe(stream: Stream, upstream: Upstream) -> None:
    """Bytes both ways until one side closes (what the client already sent after its
    login is in the stream's buffer and goes first)."""
    await stream.drain()

    async def copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(PIPE_CHUNK):
            writer.write(data)
            await writer.drain()

    tasks = [
        asyncio.create_task(copy(stream.reader, upstream.writer)),
        asyncio.create_task(copy(upstream.reader, stream.writer)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        upstream.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(upstream.writer.wait_closed(), 5)
