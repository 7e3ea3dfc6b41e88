"""The panel's HTTPS listener, run inside `courriel serve`'s event loop.

uvicorn normally owns the process (signals, loop); here it is one service among the
mail services, so its signal capture is switched off and the runtime stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn

from courriel.acme.alpn import is_challenge
from courriel.config import Config
from courriel.tls import panel_context


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class _ChallengesClosed(asyncio.Protocol):
    """uvicorn's protocol for one connection, unless the handshake ended on a
    TLS-ALPN-01 challenge's context: that connection is closed at once, before any
    HTTP is read. The CA wants nothing more (RFC 8737 section 3), and a client that
    reached the challenge without asking for `acme-tls/1` (a browser during those
    seconds) must not get a panel session behind the challenge's certificate."""

    def __init__(self, panel: asyncio.Protocol) -> None:
        self.panel: asyncio.Protocol | None = panel

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and is_challenge(ssl_object.context):
            self.panel = None
            transport.close()
            return
        assert self.panel is not None
        self.panel.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.panel is not None:
            self.panel.data_received(data)

    def eof_received(self) -> bool | None:
        return self.panel.eof_received() if self.panel is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.panel is not None:
            self.panel.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.panel is not None:
            self.panel.pause_writing()

    def resume_writing(self) -> None:
        if self.panel is not None:
            self.panel.resume_writing()


class WebService:
    name = "web"

    def __init__(self, config: Config, sock: socket.socket) -> None:
        from courriel.web.asgi import application

        self.sock = sock
        self.listening = [f"web: https://{config.web.bind}:{config.web.port}/"]
        settings = uvicorn.Config(
            application,
            ssl_certfile=str(config.tls_cert),
            ssl_keyfile=str(config.tls_key),
            lifespan="off",
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=15,
        )
        settings.load()
        # The process's certificates instead of uvicorn's own: SIGHUP and certificate
        # renewals reach the panel too, SNI serves each name its certificate, and the
        # CA's TLS-ALPN-01 challenges are answered (`courriel.acme.alpn`).
        settings.ssl = panel_context(config)
        panel = settings.http_protocol_class

        def protocol(**arguments: object) -> asyncio.Protocol:
            return _ChallengesClosed(panel(**arguments))

        settings.http_protocol_class = protocol  # type: ignore[assignment]
        self.server = _EmbeddedServer(settings)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
                return
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task
