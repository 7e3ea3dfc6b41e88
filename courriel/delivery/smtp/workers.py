"""More than one process on the port where mail comes in, so that it uses every core.

Python runs one thread at a time; Postfix spreads SMTP over many processes. With
`[smtp] workers` above 1 (0: one per core), `courriel serve` starts that many minus
one `courriel smtp-worker` processes that listen on the same port (SO_REUSEPORT: the
kernel spreads connections). That port is 25, or in edge mode, where Postfix owns
port 25 and hands every message to us, the LMTP port (`mail_in_section`). Each
worker has its own delivery journal segments and sends news of new mail to the main
process's IDLE sessions (`EventRelay`), if it has any. A worker that dies is started
again; the workers end when the main process ends (even by SIGKILL: the kernel sends
them SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from courriel.config import READING, Config
from courriel.processes import usable_cores

log = logging.getLogger("courriel.smtp")


def mail_in_section(config: Config) -> str | None:
    """The listener that worker processes share: port 25 when we serve it, else (edge
    mode) the LMTP port Postfix delivers to."""
    for section in ("smtp", "lmtp"):
        if getattr(config, section).enabled:
            return section
    return None


def worker_count(config: Config) -> int:
    """Processes on the mail-in port, this one included (1 when there is none)."""
    if mail_in_section(config) is None:
        return 1
    configured = config.smtp.workers
    return configured if configured > 0 else usable_cores()


def events_socket(config: Config) -> str:
    return str(config.data_dir / "events.sock")


def relays_events(config: Config) -> bool:
    """Workers pass news of new mail to the main process only if it has IMAP or POP3
    sessions to tell (not in edge mode, where Dovecot serves them)."""
    return any(getattr(config, section).enabled for section in READING)


LISTEN_FD = "COURRIEL_SMTP_LISTEN_FD"


class SmtpWorkers:
    """Extra processes on the mail-in port. Each gets a socket of the port's
    SO_REUSEPORT group made by this process (bound while it could still bind port 25:
    a worker runs as the service user and could not), and is started again with it if
    it dies."""

    name = "smtp-workers"

    def __init__(self, config: Config, section: str, count: int) -> None:
        from courriel.runtime import bind

        self.config = config
        self.count = count
        self.sockets = [
            bind(config, section, shared=True, join=True, index=index + 1) for index in range(count)
        ]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.task: asyncio.Task[None] | None = None
        self.listening = [f"{section}: {count} worker processes besides this one"]

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        fd = self.sockets[index].fileno()
        return subprocess.Popen(
            [sys.executable, "-m", "courriel", "smtp-worker"],
            stdin=subprocess.DEVNULL,
            pass_fds=[fd],
            env={**os.environ, LISTEN_FD: str(fd)},
        )

    async def start(self) -> None:
        self.procs = [self._spawn(index) for index in range(self.count)]
        self.task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        restarts: list[float] = []
        while True:
            await asyncio.sleep(1)
            for index, proc in enumerate(self.procs):
                if proc.poll() is None:
                    continue
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < 60] + [now]
                if len(restarts) > 10:
                    log.error("SMTP workers keep dying; not starting them again for a minute")
                    await asyncio.sleep(60)
                log.warning(
                    "SMTP worker %d ended (status %s); starting it again", proc.pid, proc.returncode
                )
                self.procs[index] = self._spawn(index)

    def reload(self) -> None:
        """SIGHUP reaches the workers too (they hold TLS contexts of their own)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGHUP)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                await asyncio.to_thread(proc.wait, 60)
            except subprocess.TimeoutExpired:
                proc.kill()
        for sock in self.sockets:
            sock.close()


def worker_services(config: Config) -> list[Any]:
    from courriel.delivery.smtp.protocol import ConnectionLimiter
    from courriel.delivery.smtp.server import Housekeeping, SmtpService
    from courriel.greylist.service import EngineService
    from courriel.greylist.settings import Settings
    from courriel.mailstore.events import events

    if relays_events(config):
        events.relay_to(events_socket(config), os.getppid())
    limiter = ConnectionLimiter(config.smtp.max_connections_per_ip)
    section = mail_in_section(config)
    if section is None:
        raise SystemExit("courriel smtp-worker: neither [smtp] nor [lmtp] is enabled")
    found: list[Any] = [Housekeeping()]
    if section == "smtp":  # greylisting is decided on port 25, not on LMTP
        found.append(EngineService(Settings.from_config(config)))  # its own cache
    found.append(SmtpService(config, section, section, limiter, inherited_socket()))  # type: ignore[arg-type]
    return found


def inherited_socket() -> socket.socket:
    """The port-25 socket `courriel serve` passed down to this worker."""
    sock = socket.socket(fileno=int(os.environ[LISTEN_FD]))
    sock.setblocking(False)
    return sock


def run_worker(config: Config) -> None:
    from courriel.processes import die_with_parent
    from courriel.runtime import run_loop, serve

    die_with_parent()

    async def main() -> None:
        await serve(config, worker_services(config), main=False)

    run_loop(config, main())
