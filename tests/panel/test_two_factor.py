"""Two-factor sign-in (TOTP, RFC 6238) for every role of the panel (issue 11): enrolment
with a QR code made on the server and 10 recovery codes shown once, sign-in with a code
(each good once) or a recovery code (each good once), turning it off with the current
password, the provider requiring it of admins and of a domain's owners, and app
passwords for mail programs."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
import pytest

from courriel.accounts.models import AppPassword, Domain, Mailbox, TwoFactor
from courriel.accounts.services import twofactor
from courriel.accounts.services.domains import modify_domain
from courriel.accounts.signin import Door, Outcome, attempt
from courriel.config import get_config
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.panel import Admin, Browser, signed_in


def enrol(browser: Browser) -> tuple[pyotp.TOTP, list[str]]:
    """Turn two-factor sign-in on as a person would: the page's key into an "app"."""
    page = browser.post("/security/two-factor/").content.decode()
    assert 'src="data:image/png;base64,' in page  # the QR code, made here
    key = re.search(r'<code class="secret-key">([A-Z2-7 ]+)</code>', page).group(1)  # type: ignore[union-attr]
    totp = pyotp.TOTP(key.replace(" ", ""))
    wrong = browser.post("/security/two-factor/confirm/", {"code": "000000"}).content.decode()
    assert "This code is not right" in wrong and 'src="data:image/png' in wrong
    done = browser.post("/security/two-factor/confirm/", {"code": totp.now()})
    assert "no-store" in done["Cache-Control"]
    codes = re.findall(r"<li><code>([a-z2-7-]{19})</code></li>", done.content.decode())
    assert len(codes) == 10
    return totp, codes


def login(browser: Browser, username: str, password: str) -> Any:
    return browser.post("/login/", {"username": username, "password": password})


def next_code(totp: pyotp.TOTP) -> str:
    """The code of the next time step (one step of clock drift is accepted), so that a
    test need not wait for the code used at enrolment to expire."""
    return totp.at(time.time() + 30)


@pytest.mark.parametrize("role", ["owner", "mailbox", "provider"])
def test_every_role_enrols_and_signs_in_with_a_code(
    role: str, monsite: Customer, info: Mailbox, admin: Admin
) -> None:
    username, password, holder = {
        "owner": ("monsite", monsite.password, monsite.owner),
        "mailbox": ("monsite0001", STRONG, info),
        "provider": ("admin", admin.password, admin.user),
    }[role]
    here = Browser()
    assert login(here, username, password).status_code == 302
    totp, codes = enrol(here)
    assert twofactor.enabled(holder) is not None
    assert "10 recovery codes left" in here.text("/security/")

    browser = Browser()
    step = login(browser, username, password)
    assert step.status_code == 302 and step["Location"] == "/login/code/"
    assert browser.get("/").status_code == 302  # not signed in yet
    assert browser.post("/login/code/", {"code": "123456"}).status_code == 401
    code = next_code(totp)
    done = browser.post("/login/code/", {"code": code})
    assert done.status_code == 302 and browser.get("/").status_code in (200, 302)
    assert "_auth_user_id" in browser.session
    # A code is good once (the very same code: computed again, it could belong to the
    # following time step, which is good); a recovery code too.
    again = Browser()
    login(again, username, password)
    assert again.post("/login/code/", {"code": code}).status_code == 401
    assert again.post("/login/code/", {"code": codes[0]}).status_code == 302
    once_more = Browser()
    login(once_more, username, password)
    assert once_more.post("/login/code/", {"code": codes[0]}).status_code == 401
    assert "8 recovery codes left" in once_more_signed(username, password, codes[1]).text(
        "/security/"
    )


def once_more_signed(username: str, password: str, code: str) -> Browser:
    browser = Browser()
    login(browser, username, password)
    assert browser.post("/login/code/", {"code": code}).status_code == 302
    return browser


def test_guessing_codes_is_throttled(monsite: Customer) -> None:
    here = signed_in(monsite.owner)
    enrol(here)
    browser = Browser()
    login(browser, "monsite", monsite.password)
    for n in range(5):
        assert browser.post("/login/code/", {"code": f"{n:06d}"}).status_code == 401
    assert browser.post("/login/code/", {"code": "999999"}).status_code == 429


def test_the_code_step_expires(monsite: Customer) -> None:
    enrol(signed_in(monsite.owner))
    browser = Browser()
    login(browser, "monsite", monsite.password)
    session = browser.session
    session["courriel_2fa_pending"]["at"] -= 301
    session.save()
    assert browser.get("/login/code/")["Location"] == "/login/"


def test_turning_it_off_asks_for_the_current_password(monsite: Customer) -> None:
    here = signed_in(monsite.owner)
    enrol(here)
    refused = here.post("/security/two-factor/off/", {"off-current_password": ""})
    assert "Type your current password" in refused.content.decode()
    wrong = here.post("/security/two-factor/off/", {"off-current_password": "nope-nope"})
    assert "This is not your current password." in wrong.content.decode()
    assert twofactor.enabled(monsite.owner) is not None
    here.post("/security/two-factor/off/", {"off-current_password": monsite.password})
    assert twofactor.enabled(monsite.owner) is None
    assert login(Browser(), "monsite", monsite.password)["Location"] == "/"


def test_the_provider_requires_it_of_a_domains_owners(
    monsite: Customer, provider: Any, info: Mailbox
) -> None:
    modify_domain(provider, monsite.domain, require_2fa=True)
    browser = Browser()
    assert login(browser, "monsite", monsite.password)["Location"] == "/security/"
    for url in ("/", "/d/monsite.be/", "/d/monsite.be/users/", "/tokens/"):
        assert browser.get(url)["Location"] == "/security/", url
    assert "turn it on to use the panel" in browser.text("/security/")
    enrol(browser)
    assert browser.get("/d/monsite.be/").status_code == 200
    refused = browser.post("/security/two-factor/off/", {"off-current_password": monsite.password})
    assert "cannot be turned off" in refused.content.decode()
    # The domain's mailbox users are not concerned.
    assert login(Browser(), "monsite0001", STRONG)["Location"] == "/"


def test_the_provider_requires_it_of_admins(admin: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(get_config().auth, "require_2fa_for_admins", True)
    browser = Browser()
    assert login(browser, "admin", admin.password)["Location"] == "/security/"
    assert browser.get("/provider/domains/")["Location"] == "/security/"


def test_only_the_provider_sets_the_requirement(
    monsite: Customer, owner_browser: Browser, provider_browser: Browser
) -> None:
    from courriel.errors import PermissionDeniedError

    with pytest.raises(PermissionDeniedError):
        modify_domain(monsite.actor, monsite.domain, require_2fa=False)
    assert 'name="require_2fa"' not in owner_browser.text("/d/monsite.be/details/")
    page = provider_browser.text("/d/monsite.be/details/")
    assert 'name="require_2fa"' in page


def test_with_two_factor_on_mail_programs_take_app_passwords_only(
    info: Mailbox, info_browser: Browser
) -> None:
    assert attempt("monsite0001", STRONG, "192.0.2.1", Door.IMAP).ok
    refused = info_browser.post("/security/app-passwords/", {"name": "phone"})
    assert "Type your current password" in refused.content.decode()
    made = info_browser.post(
        "/security/app-passwords/", {"name": "Thunderbird", "current_password": STRONG}
    )
    assert "no-store" in made["Cache-Control"]
    secret = re.search(
        r'<p class="secret-value"><code>([a-z2-7-]+)</code>', made.content.decode()
    ).group(1)  # type: ignore[union-attr]
    stored = AppPassword.objects.get(mailbox=info)
    assert secret.replace("-", "") not in stored.password_hash and stored.password_hash.startswith(
        "{ARGON2ID}"
    )
    # Without two-factor sign-in: both work for mail programs, only the password for the panel.
    for door in (Door.IMAP, Door.POP3, Door.SMTP):
        assert attempt("monsite0001", secret, "192.0.2.2", door).ok
        assert attempt("monsite0001", STRONG, "192.0.2.2", door).ok
    assert attempt("monsite0001", secret, "192.0.2.2", Door.PANEL).outcome is Outcome.FAILED
    enrol(info_browser)
    for door in (Door.IMAP, Door.POP3, Door.SMTP):
        assert attempt("monsite0001", secret.upper().replace("-", " "), "192.0.2.3", door).ok
        assert not attempt("monsite0001", STRONG, "192.0.2.3", door).ok
    # Revoked: gone at once.
    info_browser.post(f"/security/app-passwords/{stored.pk}/revoke/", {"confirm": "yes"})
    assert not attempt("monsite0001", secret, "192.0.2.4", Door.IMAP).ok


def test_nobody_else_reaches_someone_elses_security(
    monsite: Customer, autre: Customer, info: Mailbox, provider_browser: Browser
) -> None:
    theirs = signed_in(autre.owner)
    theirs.post("/security/app-passwords/", {"name": "x", "current_password": autre.password})
    other_id = AppPassword.objects.get().pk
    mine = signed_in(monsite.owner)
    response = mine.post(f"/security/app-passwords/{other_id}/revoke/", {"confirm": "yes"})
    assert response.status_code == 404 and AppPassword.objects.exists()
    # An admin looking as the owner does not act on the owner's security.
    provider_browser.post("/provider/domain/monsite.be/impersonate/")
    assert provider_browser.get("/security/").status_code == 404
    assert provider_browser.post("/security/two-factor/").status_code == 404
    assert not TwoFactor.objects.exists()


def test_a_lost_phone_is_reset_by_the_provider_or_the_owner(
    monsite: Customer, info: Mailbox, provider: Any, cli: Any
) -> None:
    enrol(signed_in(info))
    enrol(signed_in(monsite.owner))
    twofactor.reset(monsite.actor, info)  # the owner, for a mailbox of the domain
    assert twofactor.enabled(info) is None
    assert "turned off" in cli("user", "reset-2fa", "monsite.be", "monsite").out
    assert twofactor.enabled(Mailbox.objects.get(login="monsite")) is None
    assert Domain.objects.get(name="monsite.be").require_2fa is False
