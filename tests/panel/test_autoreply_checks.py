"""Issue 16, item 4 in the panel: an automatic reply whose end date is past is
refused with the reason on the form (Edit Mailbox and self-service, in the reader's
language), and a new reply answers each sender at most once a day unless the owner
chooses otherwise."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from courriel.accounts.models import Mailbox
from tests.fixtures.api import Api
from tests.fixtures.panel import Browser
from tests.fixtures.processes import InProcess
from tests.panel.test_mailbox_pages import edit_form

PAST = {
    "en": "is already past: the automatic reply would never be sent.",
    "fr": "est déjà passée : la réponse automatique ne serait jamais envoyée.",
    "nl": "is al voorbij: het automatisch antwoord zou nooit verstuurd worden.",
}


def reply(**values: str) -> dict[str, str]:
    ended = (timezone.localdate() - timedelta(days=3)).isoformat()
    return {
        "autoreply_enabled": "on",
        "autoreply_message": "I'm currently not available",
        "autoreply_interval_0": "value",
        "autoreply_interval_1": "10",
        "autoreply_start_0": "none",
        "autoreply_end_0": "value",
        "autoreply_end_1": ended,
        **values,
    }


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_a_reply_that_already_ended_is_refused_on_the_form(
    owner_browser: Browser, info_browser: Browser, info: Mailbox, language: str
) -> None:
    for browser, url, data in (
        (owner_browser, "/d/monsite.be/user/monsite0001/", edit_form(info, **reply())),
        (info_browser, "/me/autoreply/", reply()),
    ):
        response = browser.post(url, data, HTTP_ACCEPT_LANGUAGE=language)
        assert response.status_code == 200, url
        page = html.unescape(response.content.decode())
        assert PAST[language] in page, url
        assert 'aria-invalid="true"' in page
        info.refresh_from_db()
        assert not info.autoreply_enabled


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_the_minimum_interval_offered_is_a_day(
    owner_browser: Browser, info: Mailbox, language: str
) -> None:
    page = owner_browser.get(
        "/d/monsite.be/user/monsite0001/", HTTP_ACCEPT_LANGUAGE=language
    ).content.decode()
    assert re.search(r'name="autoreply_interval_1"[^>]* value="1440"', page)
    assert 'name="autoreply_interval_0" value="value" checked' in page


def test_the_api_and_the_command_line_refuse_it_too(
    owner_api: Api, info: Mailbox, cli: InProcess
) -> None:
    ended = (timezone.localdate() - timedelta(days=3)).isoformat()
    status, answer = owner_api.patch(
        "/domains/monsite.be/mailboxes/monsite0001",
        {"autoreply_enabled": True, "autoreply_message": "Away", "autoreply_end": ended},
    )
    assert status == 400 and answer["field"] == "autoreply_end"
    refused = cli(
        "user",
        "autoreply",
        "monsite.be",
        "monsite0001",
        "--message",
        "Away",
        "--end",
        ended,
        ok=False,
    )
    assert refused.code == 65 and "is already past" in refused.err
