"""Issue 11 in a real browser (Playwright driving Debian's Chromium) against a real
`courriel serve`: a session survives a password change made in another browser as a
clean return to the login page (it was "Server error" on every page), the API tokens
are revoked, and the strength of a new password is shown while it is typed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fixtures.accounts import STRONG
from tests.fixtures.browser import Screens
from tests.fixtures.platform import insecure_context
from tests.fixtures.processes import Courriel, Served, start_serve
from tests.panel.test_browser import shown, sign_in, sign_out, submit

pytestmark = pytest.mark.slow
NEW = "N3w-Pass-phrase!"


def api_status(served: Served, token: str) -> int:
    request = urllib.request.Request(
        f"{served.web_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, context=insecure_context(), timeout=30) as answer:
            json.loads(answer.read())
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def new_page(chromium: Any, prefix: str) -> tuple[Any, Any, Screens]:
    context = chromium.new_context(ignore_https_errors=True, locale="en-GB")
    page = context.new_page()
    return context, page, Screens(page, prefix)


def test_a_password_change_elsewhere_and_the_strength_meter(
    chromium: Any, courriel: Courriel
) -> None:
    courriel("domain", "create", "monsite.be", "--plan", "recommended")
    courriel("user", "create", "monsite.be", "--real", "Info", "--pass", STRONG)
    token = courriel("token", "create", "--login", "monsite0001", "--name", "phone").out
    secret = token.splitlines()[1].strip()
    served = start_serve(courriel)
    try:
        base = served.web_url
        laptop, at_home, home_screens = new_page(chromium, "security-laptop")
        phone, on_phone, phone_screens = new_page(chromium, "security-phone")
        sign_in(at_home, base, "monsite0001", STRONG)
        sign_in(on_phone, base, "monsite0001", STRONG)
        assert "My account" in shown(at_home)
        assert api_status(served, secret) == 200

        on_phone.goto(base + "/me/password/")
        on_phone.fill("#id_current", STRONG)
        on_phone.fill("#id_password", "abcdefghijklmnop")
        meter = on_phone.locator(".strength span")
        expect(meter).to_contain_text("too easy to guess")
        assert "Sequences like" in meter.inner_text()
        phone_screens.shot("weak password while typing")
        on_phone.fill("#id_password", NEW)
        expect(meter).to_have_text("Strong password.")
        on_phone.fill("#id_password_again", NEW)
        submit(on_phone)
        text = shown(on_phone)
        assert "Your password is changed." in text
        assert "Your other sessions have ended. 1 API token was revoked." in text
        phone_screens.shot("password changed")
        assert api_status(served, secret) == 401

        # The laptop's session ended cleanly: the login page, not an error.
        at_home.goto(base + "/me/")
        assert "/login/" in at_home.url and "Login to Courriel" in shown(at_home)
        at_home.goto(base + "/login/")
        assert "Server error" not in shown(at_home)
        home_screens.shot("back to the login page")
        sign_in(at_home, base, "monsite0001", NEW)
        assert "My account" in shown(at_home)
        for screens in (home_screens, phone_screens):
            assert screens.problems == []
        laptop.close()
        phone.close()
    finally:
        served.stop()


def test_two_factor_sign_in_and_app_passwords(chromium: Any, courriel: Courriel) -> None:
    """Enrolment and sign-in with codes computed by the test; then an app password works
    over IMAP and SMTP while the account password is refused there."""
    import imaplib
    import smtplib
    import time

    import pyotp

    courriel("domain", "create", "monsite.be", "--plan", "recommended")
    courriel("user", "create", "monsite.be", "--real", "Info", "--pass", STRONG)
    served = start_serve(courriel, {"COURRIEL_ACCESS_PLAINTEXT_ON_LOOPBACK": "true"})
    try:
        base = served.web_url
        context, page, screens = new_page(chromium, "two-factor")
        sign_in(page, base, "monsite0001", STRONG)
        page.goto(base + "/security/")
        submit(page, "form[action='/security/two-factor/']")
        assert page.locator("img.qr").get_attribute("src").startswith("data:image/png;base64,")
        screens.shot("scan the QR code")
        key = page.locator("code.secret-key").inner_text().replace(" ", "")
        totp = pyotp.TOTP(key)
        page.fill("#id_code", totp.now())
        submit(page, "main form")
        codes = page.locator("ol.recovery-codes code").all_inner_texts()
        assert len(codes) == 10 and "Two-factor sign-in is on." in shown(page)
        screens.shot("recovery codes, shown once")

        page.goto(base + "/security/")
        page.fill("#id_name", "Thunderbird")
        page.fill("#id_current_password", STRONG)
        submit(page, "form[action='/security/app-passwords/']")
        app_password = page.locator(".secret-value code").inner_text()
        screens.shot("app password, shown once")

        sign_out(page)
        sign_in(page, base, "monsite0001", STRONG)
        assert page.url.endswith("/login/code/")
        page.fill("#id_code", totp.at(time.time() + 30))  # the next code: each is good once
        submit(page)
        assert "My account" in shown(page)
        sign_out(page)
        sign_in(page, base, "monsite0001", STRONG)
        page.fill("#id_code", codes[3])
        submit(page)
        assert "My account" in shown(page)
        assert screens.problems == []
        context.close()

        imap = imaplib.IMAP4("127.0.0.1", served.ports["imap"], timeout=30)
        with pytest.raises(imaplib.IMAP4.error, match="Wrong login or password"):
            imap.login("monsite0001", STRONG)
        assert imap.login("monsite0001", app_password)[0] == "OK"
        imap.logout()
        with smtplib.SMTP("127.0.0.1", served.ports["submission"], timeout=30) as smtp:
            smtp.starttls(context=insecure_context())
            with pytest.raises(smtplib.SMTPAuthenticationError):
                smtp.login("monsite0001", STRONG)
        with smtplib.SMTP("127.0.0.1", served.ports["submission"], timeout=30) as smtp:
            smtp.starttls(context=insecure_context())
            assert smtp.login("monsite0001", app_password)[0] == 235
    finally:
        served.stop()


def test_a_long_batch_import_shows_its_progress(chromium: Any, courriel: Courriel) -> None:
    created = courriel("domain", "create", "monsite.be", "--plan", "large", "--json").json
    served = start_serve(courriel)
    try:
        context, page, screens = new_page(chromium, "batch-progress")
        sign_in(page, served.web_url, "monsite", created["password"])
        page.goto(served.web_url + "/d/monsite.be/users/batch/")
        page.fill("#id_text", "\n".join(f"user{n}:User {n}:" for n in range(60)))
        submit(page)
        text = shown(page)
        assert "60 of 60 lines" in text and "60 mailboxes created" in text
        screens.shot("batch import done")
        assert screens.problems == []
        context.close()
    finally:
        served.stop()
