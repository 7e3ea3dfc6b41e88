"""Port 80: HTTP-01 challenge answers for the ACME CA, and a redirect to the panel.

A deliberately small HTTP/1.1 server (no framework): one GET request per connection,
at most 8 KiB of request head, 10 seconds to send it. `/.well-known/acme-challenge/
<token>` answers the key authorization stored for that token; every other path is
sent to the panel over HTTPS. Nothing else is ever served on plain HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from courriel.acme import store
from courriel.config import Config, get_config
from courriel.runtime import close_server

log = logging.getLogger("courriel.acme")

PREFIX = "/.well-known/acme-challenge/"
MAX_HEAD = 8192
READ_TIMEOUT = 10.0


def _response(status: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    ).encode() + body


def answer(config: Config, head: bytes) -> bytes:
    """The whole response to one request head."""
    try:
        method, target, _version = head.split(b"\r\n", 1)[0].decode("ascii").split(" ")
    except (UnicodeDecodeError, ValueError):
        return _response("400 Bad Request", b"bad request\n")
    if method not in ("GET", "HEAD"):
        return _response("405 Method Not Allowed", b"GET only\n", "Allow: GET, HEAD\r\n")
    path = target.split("?", 1)[0]
    if path.startswith(PREFIX):
        found = store.challenge_path(config, path[len(PREFIX) :])
        try:
            body = found.read_bytes() if found is not None else None
        except OSError:
            body = None
        if body is None:
            return _response("404 Not Found", b"no such challenge\n")
        return _response("200 OK", body if method == "GET" else b"")
    host = head.split(b"\r\nHost:", 1)[-1].split(b"\r\n", 1)[0].strip().decode("ascii", "replace")
    host = host.rsplit(":", 1)[0] if host and not host.endswith("]") else host
    location = f"https://{host or config.hostname}:{config.web.port}/"
    return _response("301 Moved Permanently", b"", f"Location: {location}\r\n")


class Responder:
    name = "acme"

    def __init__(self, config: Config) -> None:
        from courriel.runtime import bind

        self.sock: socket.socket = bind(config, "acme")
        self.server: asyncio.AbstractServer | None = None
        self.listening = [f"acme: http://{config.acme.bind}:{config.acme.port}/ (HTTP-01)"]

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, sock=self.sock, limit=MAX_HEAD)

    async def stop(self) -> None:
        await close_server(self.server)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            writer.write(answer(get_config(), head))
            await writer.drain()
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, TimeoutError):
            writer.write(_response("400 Bad Request", b"bad request\n"))
        except ConnectionError:
            pass
        finally:
            writer.close()
