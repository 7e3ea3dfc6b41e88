"""The disk usage shown by the panel and the API ("76 kB out of 30 GB") is counted
from the Maildirs, kept for a minute, and never makes a big customer's page wait."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.core.cache import cache

from courriel.accounts.models import Mailbox
from courriel.accounts.services.limits import disk_usage
from courriel.config import get_config
from courriel.mailstore.layout import create_maildir
from courriel.mailstore.maildir import deliver
from courriel.web import usage
from tests.fixtures.accounts import Customer
from tests.fixtures.panel import Browser


@pytest.fixture
def refreshes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Background counts asked for (run by hand in these tests)."""
    asked: list[int] = []
    monkeypatch.setattr(usage, "_refresh_in_background", asked.append)
    return asked


@pytest.fixture
def own_mail_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mail delivered here stays out of the other tests' mailboxes."""
    monkeypatch.setitem(get_config().mail, "root", str(tmp_path / "mail"))


def test_a_small_customer_is_counted_at_once_and_kept(
    owner_browser: Browser, monsite: Customer, refreshes: list[int], own_mail_root: None
) -> None:
    owner = Mailbox.objects.get(pk=monsite.owner.pk)
    maildir = owner.maildir_path(get_config().mail_root)
    create_maildir(maildir)
    deliver(maildir, b"Subject: hi\r\n\r\n" + b"x" * 2000)
    page = owner_browser.text("/d/monsite.be/")
    assert "out of 30\u00a0GB" in page and "0 bytes" not in page
    assert usage.recent_disk_usage(monsite.domain) > 2000
    assert refreshes == []


def test_an_old_figure_is_shown_while_a_new_one_is_counted(
    monsite: Customer, refreshes: list[int]
) -> None:
    cache.set(usage._key(monsite.domain.pk), (1234, time.time() - 3600), None)
    assert usage.recent_disk_usage(monsite.domain) == 1234
    assert refreshes == [monsite.domain.pk]
    usage._refresh(monsite.domain.pk)  # what the background thread does
    assert usage.recent_disk_usage(monsite.domain) == disk_usage(monsite.domain) != 1234


def test_a_big_customer_is_counted_in_the_background(
    owner_browser: Browser,
    monsite: Customer,
    refreshes: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(usage, "COUNT_INLINE_UP_TO", 0)
    page = owner_browser.text("/d/monsite.be/")
    assert "being calculated" in page
    assert refreshes == [monsite.domain.pk]
