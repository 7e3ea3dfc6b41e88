"""The daily mail about failed sign-ins (issue 11, item 2): the mailbox's user and the
domain's owner hear "N failed sign-ins from these addresses", once a day at most."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from courriel.accounts import reports
from courriel.accounts.models import FailureReport, Mailbox, SignInFailure
from courriel.accounts.services.mailboxes import modify_mailbox
from courriel.accounts.signin import Door, attempt
from courriel.config import get_config
from tests.fixtures.accounts import Customer
from tests.panel.test_account_mail import body, notices


def guess(login: str, count: int, address: str = "198.51.100.5", start: int = 0) -> None:
    for n in range(start, start + count):
        attempt(login, f"guess-{n}", address, Door.IMAP)


def test_the_user_and_the_owner_hear_about_failed_sign_ins_once_a_day(
    monsite: Customer, info: Mailbox
) -> None:
    modify_mailbox(monsite.actor, info, language="fr")
    guess("monsite0001", 3)
    guess("monsite0001", 3, address="192.0.2.44")
    guess("monsite", 2)  # the owner: under the threshold
    assert reports.send_due() == 1
    [(recipients, message)] = notices()
    assert recipients == ["monsite0001@monsite.be", "monsite@monsite.be"]
    assert message["Subject"] == "6 échecs de connexion à monsite0001"
    text = body(message)
    assert "198.51.100.5: 3" in text and "192.0.2.44: 3" in text
    guess("monsite0001", 5, address="192.0.2.45")
    assert reports.send_due() == 0  # once a day
    assert reports.send_due(timezone.now() + timedelta(days=1, minutes=1)) == 0  # all older
    FailureReport.objects.update(sent_at=timezone.now() - timedelta(hours=24, minutes=1))
    assert reports.send_due() == 1  # a day later, still failing: another report


def test_a_provider_admins_failures_go_to_the_provider_address(
    admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(get_config().general, "provider_email", "noc@hosting.example")
    for n in range(5):
        attempt("admin", f"guess-{n}", "198.51.100.5", Door.PANEL)
    guess("nobody-at-all", 9)  # an unknown login: nobody to tell
    assert reports.send_due() == 1
    assert [recipients for recipients, _ in notices()] == [["noc@hosting.example"]]


def test_old_records_are_forgotten(info: Mailbox) -> None:
    guess("monsite0001", 3)
    SignInFailure.objects.update(at=timezone.now() - timedelta(days=2))
    reports.forget_old()
    assert not SignInFailure.objects.exists()
