"""Certificates kept valid inside `courriel serve`: a round at start and every 12
hours asks the CA for every group of names that has no certificate yet or expires
within `[tls] acme_renew_before`; a failed round is tried again within the hour and
reported to the provider (once a day at most); the self-signed (or `[tls]`)
certificate keeps serving every name that has none."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import signal
from typing import Any

from courriel.acme import store
from courriel.config import Config, get_config

log = logging.getLogger("courriel.acme")

ROUND_EVERY = 12 * 3600.0
RETRY_AFTER = 3600.0
REPORT_EVERY = datetime.timedelta(days=1)


def run_round(config: Config, *, force: bool = False) -> dict[str, Any]:
    """Issue what is due (everything with `force`); returns and stores the outcome.
    Blocking: run in a thread."""
    from courriel.bootstrap import setup_django

    setup_django()
    # One round at a time (the server's and `courriel tls renew`): a TLS-ALPN-01
    # challenge is known by its name alone, so two rounds asking for the same name
    # at once would replace each other's answer.
    with store.round_lock(config):
        return _round(config, force)


def _round(config: Config, force: bool) -> dict[str, Any]:
    from courriel.acme.client import AcmeError, due, issue, wanted_groups

    now = datetime.datetime.now(datetime.UTC)
    issued, failures = [], []
    for group in wanted_groups(config):
        if not force and not due(config, group, now):
            continue
        try:
            issue(config, group)
            issued.append(list(group.names))
        except AcmeError as error:
            log.error("ACME: %s: %s", ", ".join(group.names), error)
            failures.append({"names": list(group.names), "error": str(error)})
    previous = store.read_status(config)
    status = {
        "checked_at": now.isoformat(),
        "issued": issued,
        "failures": failures,
        "reported_at": previous.get("reported_at"),
    }
    if failures and _report_due(previous, now):
        _report(failures)
        status["reported_at"] = now.isoformat()
    store.write_status(config, status)
    return status


def _report_due(previous: dict[str, Any], now: datetime.datetime) -> bool:
    last = previous.get("reported_at")
    if not last:
        return True
    return now - datetime.datetime.fromisoformat(last) >= REPORT_EVERY


def _report(failures: list[dict[str, Any]]) -> None:
    from courriel.delivery.notices import report_to_provider

    lines = "\n".join(f"- {', '.join(f['names'])}: {f['error']}" for f in failures)
    try:
        report_to_provider(
            "Certificate renewal failed",
            "The mail platform could not get certificates from its ACME CA:\n\n"
            f"{lines}\n\nThe current certificates (or the self-signed one) keep being "
            "served; it tries again within the hour. `courriel tls status` shows the last "
            "round, `courriel tls renew` tries now.\n",
        )
    except Exception:
        log.warning("could not e-mail the certificate failure to the provider", exc_info=True)


def certificates(config: Config) -> list[dict[str, Any]]:
    """What `courriel tls status` and the provider's pages show."""
    from courriel.acme.client import expiry

    rows = []
    for name, chain, _key in store.issued(config):
        ends = expiry(chain)
        rows.append(
            {
                "name": name,
                "names": store.names_of(chain),
                "expires": ends.isoformat() if ends else None,
            }
        )
    return rows


class Renewals:
    name = "acme-renewals"

    def __init__(self, config: Config) -> None:
        self.listening = [
            f"acme: certificates from {config.tls.acme_directory} ({config.tls.acme_challenge})"
        ]
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        await asyncio.sleep(1)  # every listener up first: the CA connects to port 80 or 443
        while True:
            try:
                status = await asyncio.to_thread(run_round, get_config())
            except Exception:
                log.exception("ACME round failed")
                status = {"failures": ["unexpected error"], "issued": []}
            if status["issued"]:
                os.kill(os.getpid(), signal.SIGHUP)  # every process serves them now
            await asyncio.sleep(RETRY_AFTER if status["failures"] else ROUND_EVERY)


def services(config: Config) -> list[Any]:
    if not config.tls.acme_directory:
        return []
    from courriel.acme.responder import Responder

    found: list[Any] = [Renewals(config)]
    if config.acme.enabled:
        found.insert(0, Responder(config))
    return found
