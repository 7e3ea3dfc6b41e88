"""Self-service for mailbox users: their password, forwarding (chapter 8), automatic
reply (chapter 9), their mail client settings; and nothing of the owner's pages."""

from __future__ import annotations

import plistlib
from datetime import date

from courriel.accounts.models import Mailbox
from courriel.accounts.services.mailboxes import authenticate
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.panel import Browser


def test_overview_shows_the_account_and_mail_client_settings(
    info_browser: Browser, info: Mailbox
) -> None:
    page = info_browser.text("/me/")
    for fact in (
        "monsite0001@monsite.be",
        "info@monsite.be",
        "out of 3\u00a0GB",
        "Mail client settings",
        "maximusconfessor.all2all.org",
        "IMAP",
        "POP3",
        "SMTP",
        "STARTTLS",
        "Mailbox user",
    ):
        assert fact in page, fact
    # No owner menu for a mailbox user.
    assert "Edit Mail Users" not in page and "/d/monsite.be/" not in page


def test_a_mailbox_user_finds_none_of_the_owners_pages(
    info_browser: Browser, info: Mailbox
) -> None:
    for url in ("/d/monsite.be/", "/d/monsite.be/users/", "/d/monsite.be/user/monsite0001/"):
        assert info_browser.get(url).status_code == 404, url
    assert info_browser.get("/provider/domains/").status_code == 404


def test_own_password_needs_the_current_one(info_browser: Browser, info: Mailbox) -> None:
    url = "/me/password/"
    new = "N3w-Pass-phrase!"
    wrong = info_browser.post(url, {"current": "nope", "password": new, "password_again": new})
    assert "This is not your current password." in wrong.content.decode()
    assert authenticate("monsite0001", STRONG).ok
    done = info_browser.post(
        url, {"current": STRONG, "password": new, "password_again": new}, follow=True
    )
    assert "Your password is changed." in done.content.decode()
    assert authenticate("monsite0001", new).ok
    assert info_browser.get("/me/").status_code == 200  # still signed in


def test_guessing_the_current_password_is_throttled(info_browser: Browser, info: Mailbox) -> None:
    url = "/me/password/"
    new = "N3w-Pass-phrase!"
    for n in range(5):
        info_browser.post(url, {"current": f"nope-{n}", "password": new, "password_again": new})
    blocked = info_browser.post(url, {"current": STRONG, "password": new, "password_again": new})
    assert "Too many failed logins" in blocked.content.decode()
    assert authenticate("monsite0001", STRONG).ok


def test_forwarding_without_keeping_a_copy(info_browser: Browser, info: Mailbox) -> None:
    url = "/me/forwarding/"
    assert "Deliver to this user normally" in info_browser.text(url)
    done = info_browser.post(url, {"forward": "on", "forward_to": "monsite@gmail.com"})
    assert done.status_code == 302
    info.refresh_from_db()
    assert info.forward_to == ["monsite@gmail.com"] and not info.deliver_normally
    dropped = info_browser.post(url, {})
    assert "Mail would be thrown away" in dropped.content.decode()


def test_vacation_message_between_two_dates(info_browser: Browser, info: Mailbox) -> None:
    url = "/me/autoreply/"
    done = info_browser.post(
        url,
        {
            "autoreply_enabled": "on",
            "autoreply_message": "I'm currently not available",
            "autoreply_interval_0": "value",
            "autoreply_interval_1": "10",
            "autoreply_start_0": "value",
            "autoreply_start_1": "2010-09-09",
            "autoreply_end_0": "value",
            "autoreply_end_1": "2010-09-19",
        },
    )
    assert done.status_code == 302
    info.refresh_from_db()
    assert info.autoreply_enabled and info.autoreply_interval == 600
    assert info.autoreply_end == date(2010, 9, 19)
    assert "from Sept. 9, 2010" in info_browser.text("/me/")


def test_apple_profile_download(info_browser: Browser, info: Mailbox) -> None:
    response = info_browser.get("/me/mobileconfig")
    assert response["Content-Type"] == "application/x-apple-aspen-config"
    assert "monsite0001.mobileconfig" in response["Content-Disposition"]
    profile = plistlib.loads(response.content)
    account = profile["PayloadContent"][0]
    assert account["IncomingMailServerUsername"] == "monsite0001"
    assert account["IncomingMailServerHostName"] == "maximusconfessor.all2all.org"
    assert account["EmailAddress"] == "monsite0001@monsite.be"
    assert "IncomingPassword" not in account and "OutgoingPassword" not in account


def test_owners_have_their_own_mailbox_pages_too(
    owner_browser: Browser, provider_browser: Browser, monsite: Customer
) -> None:
    assert "monsite@monsite.be" in owner_browser.text("/me/")
    assert provider_browser.get("/me/").status_code == 404  # the provider has no mailbox
