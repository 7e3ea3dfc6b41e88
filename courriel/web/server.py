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

from courriel.config import Config
from courriel.tls import server_context


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


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
        # The process's shared context instead of uvicorn's own: SIGHUP and certificate
        # renewals reach the panel too, and SNI serves each name its certificate.
        settings.ssl = server_context(config)
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
