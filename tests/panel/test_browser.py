"""The manual, clicked through in a real browser against a real `courriel serve`, in
English and in French: the provider sets up monsite.be (chapter 1), the owner signs in
(2), reads the information and details (3, 5), adds monsite0001 with its addresses,
forwarding and vacation message (6-9), an alias to frederic@gmail.com (10), changes a
password both ways (11), batch-creates and deletes users, adds a sub-server and a
domain alias; then monsite0001 uses self-service. Every main page is photographed, and
any Content-Security-Policy refusal or script error in the console fails the test."""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.accounts import STRONG
from tests.fixtures.browser import CHROMIUM_ARGS, Screens
from tests.fixtures.pictures import (
    COUNTED,
    PORTS,
    Pictures,
    chromium_in,
    picture_env,
    send_traffic,
)
from tests.fixtures.pictures import unavailable as pictures_unavailable
from tests.fixtures.pictures import wrapper as namespaces
from tests.fixtures.processes import Courriel, start_serve
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.slow
INFO = "/d/monsite.be/user/monsite0001/"

TEXT = {
    "en": {
        "locale": "en-GB",
        "remember": "Remember login permanently?",
        "overview": "System Information",
        "created": "The following mail domain has been set up successfully:",
        "sub-servers": "1 out of 5",
        "disk": "out of 30\u00a0GB",
        "quotas": "Quotas and limits",
        "ten more": "Based on your limits, 10 additional mailboxes can be added.",
        "nine more": "Based on your limits, 9 additional mailboxes can be added.",
        "saved": "Mailbox monsite0001 saved.",
        "alias created": "Alias frederic@monsite.be created.",
        "password changed": "The password of monsite0001 is changed.",
        "batch": "2 mailboxes created",
        "deleted": "Deleted: monsite0003.",
        "my account": "My account",
        "impersonating": "You are looking at the panel as",
        "mailed": "These facts were e-mailed to the contact address monsite@gmail.com.",
        "account mail": "The account e-mail was sent to monsite0001@monsite.be.",
        "dns": "DNS records",
        "restored": "from snapshot daily.0",
        "queue": "Outbound queue",
        "greylisting": "Greylisting",
        "whitelists": "Greylisting whitelists",
    },
    "fr": {
        "locale": "fr-BE",
        "remember": "Rester connecté en permanence ?",
        "overview": "Informations système",
        "created": "Le domaine de messagerie suivant a été créé avec succès :",
        "sub-servers": "1 sur 5",
        "disk": "sur 30\u00a0Go",
        "quotas": "Quotas et limites",
        "ten more": "Selon vos limites, 10 boîtes mail supplémentaires peuvent être ajoutées.",
        "nine more": "Selon vos limites, 9 boîtes mail supplémentaires peuvent être ajoutées.",
        "saved": "Boîte mail monsite0001 enregistrée.",
        "alias created": "Alias frederic@monsite.be créé.",
        "password changed": "Le mot de passe de monsite0001 est changé.",
        "batch": "2 boîtes mail créées",
        "deleted": "Supprimés : monsite0003.",
        "my account": "Mon compte",
        "impersonating": "Vous voyez l'interface comme",
        "mailed": (
            "Ces informations ont été envoyées par e-mail à l'adresse de contact monsite@gmail.com."
        ),
        "account mail": "L'e-mail de compte a été envoyé à monsite0001@monsite.be.",
        "dns": "Enregistrements DNS",
        "restored": "depuis la sauvegarde daily.0",
        "queue": "File d'envoi",
        "greylisting": "Liste grise",
        "whitelists": "Listes blanches de la liste grise",
    },
}


def submit(page: Any, form: str = "main form") -> None:
    """Press the form's first submit button, as a person would, and wait for the page."""
    with page.expect_navigation():
        page.locator(f"{form} button[type=submit]").first.click()


def sign_in(page: Any, base: str, username: str, password: str, remember: bool = False) -> None:
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    if remember:
        page.check("input[name=remember]")
    submit(page)


def sign_out(page: Any) -> None:
    submit(page, "header form[action='/logout/']")


def shown(page: Any) -> str:
    """The text of the page as a person reads it."""
    return page.inner_text("body")


def secret(page: Any) -> str:
    return page.locator(".secret-value").first.inner_text().strip()


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_manual_in_a_browser(
    chromium: Any, courriel: Courriel, language: str, tmp_path: Path
) -> None:
    """The walk, which also takes the README's pictures (tests/fixtures/pictures.py)
    and fails when they differ from the committed ones."""
    reason = pictures_unavailable()
    pictures = Pictures(enabled=reason is None, language=language)
    browser = chromium
    if pictures.enabled:
        courriel.data.mkdir(parents=True, exist_ok=True)
        courriel.env.update(picture_env())
        courriel.wrapper = namespaces(courriel.data, network=False)
        courriel.ports = PORTS
        served = start_serve(courriel, wrapper=namespaces(courriel.data, network=True))
        browser = chromium.browser_type.launch(
            executable_path=str(chromium_in(served.proc.pid, tmp_path)), args=CHROMIUM_ARGS
        )
    else:
        served = start_serve(courriel)
    try:
        output = "".join(served.output)
        admin_password = re.search(r"Provider admin password: (\S+)", output).group(1)  # type: ignore[union-attr]
        text = TEXT[language]
        context = browser.new_context(
            ignore_https_errors=True,
            locale=text["locale"],
            extra_http_headers={"Accept-Language": text["locale"]},
            viewport={"width": 1280, "height": 900},
        )
        page = context.new_page()
        screens = Screens(page, language)
        inside = served.proc.pid if pictures.enabled else None
        walk(
            page,
            served.web_url,
            admin_password,
            text,
            screens,
            courriel,
            pictures,
            lambda: send_traffic(served.ports["smtp"], inside),
        )
        mobile(context, served.web_url, screens)
        assert screens.problems == []
        context.close()
    finally:
        if browser is not chromium:
            browser.close()
        served.stop()
    if not pictures.enabled:
        pytest.skip(f"the walk passed; the README's pictures were not compared: {reason}")
    assert pictures.settle() == []


def walk(
    page: Any,
    base: str,
    admin_password: str,
    text: dict[str, str],
    screens: Screens,
    courriel: Courriel,
    pictures: Pictures,
    traffic: Callable[[], None],
) -> None:
    # Chapter 2: the login page, reachable by keyboard from its first element.
    page.goto(base + "/login/")
    assert text["remember"] in shown(page)
    assert page.evaluate("document.activeElement.id") == "id_username"  # autofocus
    screens.shot("login")

    # Chapter 1: the provider adds the manual's hosting server and sets up monsite.be.
    sign_in(page, base, "admin", admin_password)
    assert text["overview"] in shown(page)
    # The first Tab reaches "Skip to content", which takes the keyboard to the page.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    screens.shot("provider overview")
    page.goto(base + "/provider/servers/")
    page.fill("#id_name", "maximusconfessor")
    page.fill("#id_hostname", "maximusconfessor.all2all.org")
    page.fill("#id_ip_address", "62.58.108.13")
    submit(page, "main form")
    assert "maximusconfessor.all2all.org" in shown(page)
    screens.shot("hosting servers")
    page.goto(base + "/provider/plans/")
    screens.shot("plans")
    page.goto(base + "/provider/domains/new/")
    page.fill("#id_name", "monsite.be")
    page.select_option("#id_plan", "recommended")
    page.select_option("#id_server", "maximusconfessor")
    page.fill("#id_contact_email", "monsite@gmail.com")
    page.fill("#id_description", "Monsite")
    submit(page)
    assert text["created"] in shown(page) and text["mailed"] in shown(page)
    owner_password = secret(page)
    screens.shot("mail domain set up")
    pictures.take(page, "mail-domain-set-up", mask=(".secret-value",))
    page.goto(base + "/provider/domains/")
    screens.shot("all domains")
    submit(page, "td form")  # view as monsite
    assert text["impersonating"] in shown(page)
    screens.shot("provider viewing as the owner")
    submit(page, ".impersonation form")
    page.goto(base + "/provider/audit/")
    screens.shot("audit log")
    page.click("nav.side a[href='/provider/queue/']")
    assert text["queue"] in shown(page)
    screens.shot("outbound queue")

    # Statistics: charts drawn on the server, each with its figures beside it.
    page.click("nav.side a[href='/provider/statistics/']")
    assert page.locator("svg.chart").count() >= 3  # per hour, per day, the queue
    assert page.locator("svg.chart[role=img]").count() == page.locator("svg.chart").count()
    screens.shot("statistics")

    # Chapter 13: greylisting. The provider asks why mail was delayed, then
    # whitelists a partner's sending network.
    page.click("nav.side a[href='/provider/greylisting/']")
    assert text["greylisting"] in shown(page)
    page.fill("#lookup #id_sender", "partner@example.org")
    submit(page, "#lookup form")
    assert page.locator("#lookup .answer").count() == 1
    screens.shot("greylisting")
    page.click("a[href='/provider/greylisting/whitelist/']")
    assert text["whitelists"] in shown(page)
    page.select_option("#add #id_kind", "client")
    page.fill("#add #id_value", "192.0.2.0/24")
    page.fill("#add #id_comment", "partner")
    submit(page, "#add form")
    assert "192.0.2.0/24" in page.locator("#entries").inner_text()
    screens.shot("greylisting whitelists")
    sign_out(page)

    # Chapters 2, 3, 5: the owner signs in and reads the information and details.
    sign_in(page, base, "monsite", owner_password, remember=True)
    assert page.url == base + "/d/monsite.be/"
    content = shown(page)
    assert text["sub-servers"] in content and text["disk"] in content
    screens.shot("virtual server information")
    pictures.take(page, "virtual-server-information")
    page.click("nav.side a[href='/d/monsite.be/details/']")
    assert text["quotas"] in shown(page) and "62.58.108.13" in shown(page)
    screens.shot("virtual server details")

    # Chapter 6: add monsite0001 with the suggested login.
    page.click("nav.side a[href='/d/monsite.be/users/']")
    assert text["ten more"] in shown(page)
    page.click("a[href='/d/monsite.be/users/new/']")
    assert page.input_value("#id_login") == "monsite0001"
    page.fill("#id_real_name", "Info")
    page.check("input[name=password_0][value=value]")
    page.fill("input[name=password_1]", STRONG)
    page.fill("input[name=quota_1]", "1024M")  # typing picks the "size" radio button
    assert page.is_checked("input[name=quota_0][value=value]")
    page.fill("#id_addresses", "info@monsite.be")
    page.check("input[name=send_account_mail_to_0][value=mailbox]")  # "New mailbox address"
    screens.shot("add a user")
    submit(page, "main form.sections .actions")
    assert text["nine more"] in shown(page) and "monsite0001" in shown(page)
    assert text["account mail"] in shown(page)
    screens.shot("mail users")
    pictures.take(page, "mail-users")

    # Chapters 7, 8, 9: addresses, forwarding, vacation message with date pickers.
    page.click("a[href='/d/monsite.be/user/monsite0001/']")
    page.fill("#id_addresses", "info@monsite.be\ncontact@monsite.be\ninformation@monsite.be")
    page.check("#id_forward")
    page.fill("#id_forward_to", "monsite@gmail.com")
    page.check("#id_autoreply_enabled")
    page.fill("#id_autoreply_message", "I'm currently not available")
    page.fill("input[name=autoreply_interval_1]", "10")
    start, end = ("2030-09-09", "2030-09-19") if pictures.enabled else ("2099-09-09", "2099-09-19")
    page.fill("input[name=autoreply_start_1]", start)
    page.fill("input[name=autoreply_end_1]", end)
    submit(page, "main form.sections .actions")
    assert text["saved"] in shown(page)
    assert page.input_value("input[name=autoreply_end_1]") == end
    assert "information@monsite.be" in page.input_value("#id_addresses")
    screens.shot("edit mailbox")
    pictures.take(page, "edit-mailbox-fr", language="fr", mask=(".last-mail",))
    # Chapter 12: the owner downloads the mailbox, as the manual advises to back it up.
    with page.expect_download() as download:
        page.click(f"a[href='{INFO}download?format=mbox']")
    assert download.value.suggested_filename.startswith("monsite0001-")
    assert download.value.suggested_filename.endswith(".mbox")

    # The DNS records the customer publishes, and a restore from last night's backup.
    page.click("nav.side a[href='/d/monsite.be/dns/']")
    assert text["dns"] in shown(page) and "_dmarc.monsite.be" in shown(page)
    screens.shot("dns records")
    courriel("backup", "run")
    page.click("nav.side a[href='/d/monsite.be/backups/']")
    page.fill("#id_login", "monsite0001")
    submit(page, "#restore form")
    assert text["restored"] in shown(page)
    screens.shot("backups and restore")

    # Chapter 10: forward frederic@ to an external address.
    page.click("nav.side a[href='/d/monsite.be/aliases/']")
    page.click("a[href='/d/monsite.be/aliases/new/']")
    page.fill("#id_name", "frederic")
    page.check("#id_forward")
    page.fill("#id_forward_to", "frederic@gmail.com")
    screens.shot("add an alias")
    submit(page, "main form")
    assert text["alias created"] in shown(page) and "frederic@gmail.com" in shown(page)
    screens.shot("mail aliases")

    # Statistics: some mail arrives (delivered, forwarded, refused), and the owner sees
    # it counted for monsite.be, with disk use per mailbox (measured once a day by
    # `courriel serve`; now, for this walk).
    traffic()
    courriel("stats", "sample")

    seen: list[dict[str, int]] = []

    def counted() -> bool:
        shown = courriel("stats", "show", "--domain", "monsite.be", "--json").json
        seen.append({m: sum(h[m] for h in shown["hours"]) for m in COUNTED})
        return seen[-1] == COUNTED

    try:
        wait_until(counted, "the walk's mail to be counted", interval=0.5)
    except AssertionError:
        raise AssertionError(f"counted {seen[-1]}, expected {COUNTED}") from None
    page.goto(base + "/d/monsite.be/statistics/?domain=monsite.be")
    assert page.locator("#disk svg.chart").count() == 1
    assert page.locator("#per-hour svg.chart[role=img]").count() == 1
    screens.shot("owner statistics")
    pictures.take(page, "statistics")

    # Chapter 11, second way: Change Passwords.
    page.click("nav.side a[href='/d/monsite.be/passwords/']")
    page.click("a[href='/d/monsite.be/password/monsite0001/']")
    page.fill("#id_password", "N3w-Pass-phrase!")
    page.fill("#id_password_again", "N3w-Pass-phrase!")
    screens.shot("change password")
    submit(page, "main form")
    assert text["password changed"] in shown(page)

    # Chapter 11, first way, with "Generate and show once" instead of "Show..".
    page.goto(base + "/d/monsite.be/user/monsite0001/")
    with page.expect_navigation():
        page.click("button[form=generate-form]")
    submit(page, "main form")  # confirm
    user_password = secret(page)
    screens.shot("password shown once")

    # Batch create, then select all / invert / delete selected with confirmation.
    page.goto(base + "/d/monsite.be/users/batch/")
    page.fill(
        "#id_text",
        f"login,real_name,password\nmonsite0002,Sales,{STRONG}\nmonsite0003,Support,\n",
    )
    submit(page, "main section.card form")
    assert text["batch"] in shown(page)
    screens.shot("batch create report")
    page.goto(base + "/d/monsite.be/users/")
    boxes = page.locator("input[name=selected]")
    page.click("button[data-select=all]")
    assert all(boxes.nth(i).is_checked() for i in range(boxes.count()))
    page.click("button[data-select=invert]")
    assert not any(boxes.nth(i).is_checked() for i in range(boxes.count()))
    page.check("#select-monsite0003")
    submit(page, "#users-form")
    screens.shot("confirm delete selected users")
    submit(page, "main form")
    assert text["deleted"] in shown(page)

    # Chapter 5: a sub-server, the domain switcher, a domain alias.
    page.click("nav.side a[href='/d/monsite.be/subservers/new/']")
    page.fill("#id_name", "monsite.eu")
    submit(page, "main form")
    assert page.url == base + "/d/monsite.eu/"
    with page.expect_navigation():
        page.select_option("#id_switch_domain", "monsite.be")  # submits itself
    assert page.url == base + "/d/monsite.be/"
    page.goto(base + "/d/monsite.be/details/")
    page.fill("#id_name", "monsite.nl")
    submit(page, "#domain-aliases form.inline-form")
    assert "monsite.nl" in shown(page)

    # On a phone: the page comes first and "Menu" leads to the menu below it; wide
    # tables scroll in their own box.
    page.set_viewport_size({"width": 390, "height": 844})
    for name, url in (("mail users", "/d/monsite.be/users/"), ("edit mailbox", INFO)):
        page.goto(base + url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
        main_top = page.locator("main").bounding_box()["y"]
        assert main_top < page.locator("nav.side").bounding_box()["y"], name
        assert main_top < 300, name  # the page, not 16 links, fills the first screen
        screens.shot(f"phone {name}")
        if name == "mail users":
            pictures.take(page, "phone-mail-users", full_page=False)
    page.click("header a.menu-link")
    assert page.url.endswith("#menu")
    assert page.locator("nav.side").bounding_box()["y"] < 844  # scrolled to the menu
    page.set_viewport_size({"width": 1280, "height": 900})
    nav, main = page.locator("nav.side").bounding_box(), page.locator("main").bounding_box()
    assert nav["x"] < main["x"] and abs(nav["y"] - main["y"]) < 40  # beside it on a desktop
    assert not page.locator("header a.menu-link").is_visible()
    sign_out(page)

    # Self-service: monsite0001 signs in with the password shown once.
    sign_in(page, base, "monsite0001", user_password)
    assert page.url == base + "/me/" and text["my account"] in shown(page)
    screens.shot("self-service")
    with page.expect_download() as download:
        page.click("a[href='/me/download?format=maildir']")
    assert download.value.suggested_filename.endswith(".tar.gz")
    with tarfile.open(download.value.path(), "r:gz") as archive:
        assert "monsite0001/Maildir/cur" in archive.getnames()
    page.goto(base + "/me/autoreply/")
    assert page.is_checked("#id_autoreply_enabled")
    screens.shot("self-service automatic reply")
    page.goto(base + "/me/forwarding/")
    page.uncheck("#id_deliver_normally")
    submit(page, "main form")
    assert "monsite@gmail.com" in shown(page)
    sign_out(page)

    # The API's own documentation page, served without a CDN and within the CSP.
    page.goto(base + "/api/v1/docs")
    page.wait_for_selector(".swagger-ui .info")
    screens.shot("api documentation", full_page=False)


def mobile(context: Any, base: str, screens: Screens) -> None:
    """The same panel on a phone: the menu moves above the page, nothing overflows."""
    page = context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(base + "/login/")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    mobile_screens = Screens(page, screens.prefix + "-mobile")
    mobile_screens.shot("login")
    screens.problems += mobile_screens.problems
    page.close()
