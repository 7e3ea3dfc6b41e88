"""Mail about failed sign-ins: once a day at most, the mailbox's user and the domain's
owner (a provider admin's: `[general] provider_email`) hear "N failed sign-ins to
LOGIN from these addresses" once the login had `[auth] report_failures_after` failures
in the last 24 hours. Run every few minutes by `courriel serve` (the main process),
which also forgets sign-in records nobody needs any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count
from django.utils import timezone, translation

from courriel.config import Config, get_config
from courriel.i18n import gettext as _
from courriel.i18n import ngettext
from courriel.units import parse_duration

log = logging.getLogger("courriel.accounts")
DAY = timedelta(days=1)


@dataclass
class Report:
    login: str
    count: int
    addresses: list[tuple[str, int]]  # most failures first
    recipients: list[str]
    language: str


def _recipients(login: str) -> tuple[list[str], str]:
    """Who hears about a login's failures, and in which language."""
    from django.contrib.auth.models import User

    from courriel.accounts.models import Mailbox
    from courriel.accounts.services.mailboxes import primary_email

    config = get_config()
    mailbox = (
        Mailbox.objects.select_related("domain__parent__owner", "domain__owner")
        .prefetch_related("addresses")
        .filter(login=login)
        .first()
    )
    if mailbox is not None:
        found = [primary_email(mailbox)]
        owner = mailbox.domain.top.owner
        if owner is not None and owner.pk != mailbox.pk:
            found.append(primary_email(owner))
        language = mailbox.language or config.general.language or "en"
        return [address for address in found if address], language
    if User.objects.filter(username=login, is_staff=True).exists() and (
        config.general.provider_email
    ):
        return [config.general.provider_email], config.general.language or "en"
    return [], "en"


def due(now: datetime | None = None) -> list[Report]:
    """The reports to send now (nothing is recorded as sent)."""
    from courriel.accounts.models import FailureReport, SignInFailure

    threshold = int(get_config().auth.report_failures_after)
    if threshold <= 0:
        return []
    now = now or timezone.now()
    per_login: dict[str, Counter[str]] = defaultdict(Counter)
    for login, address, n in (
        SignInFailure.objects.filter(at__gt=now - DAY)
        .values_list("login", "address")
        .annotate(n=Count("id"))
    ):
        per_login[login][address] += n
    candidates = [login for login, counts in per_login.items() if counts.total() >= threshold]
    recent = set(
        FailureReport.objects.filter(login__in=candidates, sent_at__gt=now - DAY).values_list(
            "login", flat=True
        )
    )
    reports = []
    for login in candidates:
        if login in recent:
            continue
        recipients, language = _recipients(login)
        if recipients:
            counts = per_login[login]
            reports.append(
                Report(login, counts.total(), counts.most_common(), recipients, language)
            )
    return reports


def compose(report: Report) -> tuple[str, str]:
    with translation.override(report.language):
        subject = ngettext(
            "%(count)d failed sign-in to %(login)s",
            "%(count)d failed sign-ins to %(login)s",
            report.count,
        ) % {"count": report.count, "login": report.login}
        lines = [
            ngettext(
                "In the last 24 hours, someone tried once to sign in to %(login)s with a "
                "wrong password, from this address:",
                "In the last 24 hours, someone tried %(count)d times to sign in to "
                "%(login)s with a wrong password, from these addresses:",
                report.count,
            )
            % {"count": report.count, "login": report.login},
            "",
            *(f"  {address}: {n}" for address, n in report.addresses[:50]),
            "",
            _(
                "If it was not you, there is nothing to do: addresses that keep guessing "
                "are slowed down and refused, while the addresses you usually sign in from "
                "keep working. If you think someone knows your password, change it, and "
                "turn on two-factor sign-in in the panel (Security)."
            ),
        ]
    return subject, "\n".join(lines) + "\n"


def send_due(now: datetime | None = None) -> int:
    """Queue the reports that are due; returns how many went out."""
    from courriel.accounts.models import FailureReport
    from courriel.delivery.notices import queue_notice

    now = now or timezone.now()
    sent = 0
    for report in due(now):
        subject, body = compose(report)
        queue_notice(report.recipients, subject, body, f"sign-in failures {report.login}")
        FailureReport.objects.update_or_create(login=report.login, defaults={"sent_at": now})
        sent += 1
    return sent


def forget_old(now: datetime | None = None) -> None:
    """Drop records no rule looks at any more."""
    from courriel.accounts.models import KnownAddress, SignInFailure, SignInPace

    auth = get_config().auth
    now = now or timezone.now()
    keep = max(DAY, parse_duration(auth.failure_window), parse_duration(auth.slow_down_window))
    SignInFailure.objects.filter(at__lt=now - keep).delete()
    SignInPace.objects.filter(until__lt=now).delete()
    KnownAddress.objects.filter(
        last_success__lt=now - timedelta(days=int(auth.known_address_days))
    ).delete()


def run_once() -> int:
    forget_old()
    return send_due()


class FailureReports:
    """`courriel serve`'s loop: every few minutes, the reports that are due."""

    name = "sign-in-reports"
    listening: list[str] = []

    def __init__(self, interval: float = 300.0) -> None:
        self.interval = interval
        self.task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        from courriel.dbthread import run_db

        while True:
            try:
                await run_db(run_once)
            except Exception:
                log.exception("could not send the failed sign-in reports (will retry)")
            await asyncio.sleep(self.interval)

    async def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def services(config: Config) -> list[FailureReports]:
    return [FailureReports()]
