"""The SMTP (25), submission (587) and LMTP listeners of `courriel serve`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from pathlib import Path
from typing import Any

from courriel.config import Config
from courriel.delivery import lastmail
from courriel.delivery.body import clean_spool, spool_directory
from courriel.delivery.journal import get_journal
from courriel.delivery.quota import warn_after_delivery
from courriel.delivery.smtp.policy import Kind, SmtpPolicy
from courriel.delivery.smtp.protocol import (
    ConnectionLimiter,
    CourrielLMTP,
    CourrielSMTP,
    SessionTemplate,
)
from courriel.runtime import close_server
from courriel.stats import counters
from courriel.tls import server_context
from courriel.units import parse_duration, parse_size

log = logging.getLogger("courriel.smtp")
LMTP_MARGIN = 1024 * 1024  # bytes over [mail] message_size_limit accepted from the edge


class SmtpService:
    def __init__(
        self,
        config: Config,
        section: str,
        kind: Kind,
        limiter: ConnectionLimiter,
        sock: socket.socket,
    ) -> None:
        self.name = section
        self.config = config
        self.kind = kind
        self.sock = sock
        self.limiter = limiter
        self.policy = SmtpPolicy(config, kind)
        self.tls = server_context(config)
        values = getattr(config, section)
        self.listening = [f"{section}: smtp://{values.bind}:{values.port}/ ({kind})"]
        self.server: asyncio.AbstractServer | None = None
        self.options = self._options()
        self.protocol_class = CourrielLMTP if kind == "lmtp" else CourrielSMTP
        self.sessions = SessionTemplate(self.protocol_class, self.policy, self.options)

    def _options(self) -> dict[str, Any]:
        """What every connection's protocol object gets, worked out once."""
        config = self.config
        options: dict[str, Any] = {
            "limiter": self.limiter,
            "hostname": config.hostname,
            "ident": "Courriel ESMTP",
            "data_size_limit": parse_size(config.mail.message_size_limit, allow_unlimited=False),
            "enable_SMTPUTF8": True,
            "timeout": parse_duration(config.smtp.idle_timeout).total_seconds(),
            "tls_context": self.tls,
            "spool": spool_directory(config.data_dir),
        }
        if self.kind == "submission":
            options.update(require_starttls=True, auth_required=True, auth_require_tls=True)
        elif self.kind == "lmtp":
            # Postfix adds its own headers to what it accepted within the same limit.
            options.update(
                tls_context=None,
                auth_require_tls=True,
                data_size_limit=options["data_size_limit"] + LMTP_MARGIN,
            )
        else:
            options.update(auth_require_tls=True, auth_exclude_mechanism=["PLAIN", "LOGIN"])
        return options

    def _protocol(self) -> CourrielSMTP:
        return self.sessions()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._protocol, sock=self.sock)

    async def stop(self) -> None:
        await close_server(self.server)


class Housekeeping:
    """The mail plane's background work: the delivery journal (replayed after a crash
    before any port opens, then written into the Maildirs by its worker thread), and
    the periodic "last new mail" times and statistics' counts."""

    name = "delivery-housekeeping"
    listening: list[str] = []

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.task: asyncio.Task[None] | None = None
        self.journal = get_journal()

    async def _run(self) -> None:
        from courriel.dbthread import run_db

        while True:
            await asyncio.sleep(self.interval)
            try:
                await run_db(lastmail.flush)
            except Exception:
                log.exception("could not record last-mail times (will retry)")
            try:
                await run_db(counters.flush)
            except Exception:
                log.exception("could not record the statistics' counts (will retry)")

    async def start(self) -> None:
        from courriel.config import get_config

        await asyncio.to_thread(clean_spool, get_config().data_dir)
        replayed = await asyncio.to_thread(self.journal.recover)
        if replayed:
            log.warning("delivery journal: %d message(s) written after an interruption", replayed)
        self.journal.after_apply = warn_after_delivery
        self.journal.start()
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        from courriel.dbthread import run_db

        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await asyncio.to_thread(self.journal.stop)
        with contextlib.suppress(Exception):
            await run_db(lastmail.flush)
        with contextlib.suppress(Exception):
            await run_db(counters.flush)


def services(config: Config) -> list[Any]:
    from courriel.delivery.smtp.workers import (
        SmtpWorkers,
        events_socket,
        mail_in_section,
        relays_events,
        worker_count,
    )
    from courriel.mailstore.events import EventRelay
    from courriel.runtime import bind

    limiter = ConnectionLimiter(config.smtp.max_connections_per_ip)
    shared = mail_in_section(config)
    workers = worker_count(config)
    found: list[Any] = [Housekeeping()]
    if workers > 1 and relays_events(config):
        found.append(EventRelay(Path(events_socket(config))))
    for section, kind in (
        ("smtp", "smtp"),
        ("submission", "submission"),
        ("lmtp", "lmtp"),
        ("relay", "relay"),
    ):
        if getattr(config, section).enabled:
            sock = bind(config, section, shared=section == shared and workers > 1)
            found.append(SmtpService(config, section, kind, limiter, sock))  # type: ignore[arg-type]
    if workers > 1 and shared is not None:
        found.append(SmtpWorkers(config, shared, workers - 1))
    return found
