"""A provider puts a webmail on Courriel: Debian's Roundcube (SQLite, PHP's built-in
server) against `courriel serve`'s IMAP (STARTTLS) and submission ports, driven by
Playwright with Debian's Chromium through the issue's whole scenario — sign in as
monsite0001, list as threads and sorted by date, size and sender, search, read, send a
message with a 5 MB attachment (it arrives, and the copy in Sent opens), move to a
folder, flag, delete."""

from __future__ import annotations

import email
import email.policy
import imaplib
import os
import time
from collections.abc import Iterator
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from courriel.mailstore.maildir import deliver
from tests.access.conftest import Service
from tests.access.differential.runner import MAIL
from tests.fixtures import roundcube
from tests.fixtures.browser import Screens

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not roundcube.available(), reason="Roundcube is not installed"),
]
SEED = ["t01", "t02", "t03", "t04", "t06", "t07", "basic1", "basic3", "multipart"]
ATTACHMENT = 5 * 1024 * 1024


def expected_order(key: str, reverse: bool = False) -> list[str]:
    """The seeded subjects in the order RFC 5256 gives (ties: arrival order), worked out
    here independently of the server."""
    rows = []
    for name in SEED:
        data = (MAIL / f"{name}.eml").read_bytes().replace(b"\n", b"\r\n")
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        value = {
            "size": len(data),
            "date": parsedate_to_datetime(str(parsed["Date"])).timestamp(),
            "from": getaddresses([str(parsed["From"])])[0][1].split("@")[0].upper(),
        }[key]
        rows.append((value, str(parsed["Subject"])))
    return [subject for _value, subject in sorted(rows, key=lambda r: r[0], reverse=reverse)]


def seed(service: Service) -> None:
    for name in SEED:
        data = (MAIL / f"{name}.eml").read_bytes().replace(b"\n", b"\r\n")
        deliver(service.maildir, data, durable=False)
    client = imaplib.IMAP4("127.0.0.1", service.ports["imap"], timeout=30)
    client.login(service.login, service.password)
    assert client.create("Archive")[0] == "OK"
    assert client.subscribe("Archive")[0] == "OK"
    client.logout()


@pytest.fixture
def webmail(service: Service, tmp_path: Path) -> Iterator[roundcube.Roundcube]:
    seed(service)
    server = roundcube.Roundcube(
        tmp_path / "roundcube", service.ports["imap"], service.ports["submission"], "monsite.be"
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_idle(page: Any) -> None:
    page.wait_for_function("window.rcmail && !rcmail.busy", timeout=60_000)


def subjects(page: Any) -> list[str]:
    wait_idle(page)
    return page.locator("#messagelist tbody tr:visible td.subject span.subject").all_inner_texts()


def list_options(page: Any, **choices: str) -> None:
    page.click("#listmenulink")
    dialog = page.locator(".ui-dialog:visible")
    dialog.wait_for()
    for name, value in choices.items():
        dialog.locator(f"select[name={name}]").select_option(value)
    dialog.locator(".ui-dialog-buttonpane button.mainaction").click()
    wait_idle(page)


def select_message(page: Any, subject: str) -> None:
    page.locator("#messagelist tbody tr", has_text=subject).first.click()
    wait_idle(page)


def choose_in_menu(page: Any, opener: str, item: str, done: str) -> None:
    """Open a toolbar menu and click one of its items, until `done` (a selector) shows
    that it took: a click that lands during the menu's opening animation is lost."""
    for _attempt in range(5):
        page.click(opener)
        page.locator(item).wait_for(state="visible")
        page.wait_for_timeout(400)  # the popover's fade-in (Elastic: 150 ms) is over
        page.locator(item).click()
        try:
            page.locator(done).first.wait_for(state="visible", timeout=5000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"{item} never took effect")


def files(folder: Path) -> list[Path]:
    return [p for sub in ("cur", "new") for p in (folder / sub).iterdir()]


def messages(folder: Path) -> list[tuple[Path, bytes]]:
    """(path, content) of each message; a file renamed while it is read (Roundcube
    changing its flags) is read again under its new name."""
    for _ in range(20):
        try:
            return [(path, path.read_bytes()) for path in files(folder)]
        except FileNotFoundError:
            continue
    raise AssertionError(f"{folder} kept changing while it was read")


def wait_for(condition: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_roundcube_on_courriel(
    chromium: Any, webmail: roundcube.Roundcube, service: Service, tmp_path: Path
) -> None:
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    screens = Screens(page, "roundcube")
    try:
        _scenario(page, screens, webmail, service, tmp_path)
    finally:
        screens.shot("last")
        page.close()
    errors = webmail.log("errors.log")
    assert "IMAP Error" not in errors and "SMTP Error" not in errors, errors


def _scenario(
    page: Any, screens: Screens, webmail: roundcube.Roundcube, service: Service, tmp_path: Path
) -> None:
    # Sign in as the manual's mailbox user; the special folders are all there.
    page.goto(webmail.url)
    page.fill("#rcmloginuser", service.login)
    page.fill("#rcmloginpwd", service.password)
    page.click("#rcmloginsubmit")
    page.wait_for_selector("#messagelist tbody tr")
    folders = page.locator("#mailboxlist").inner_text()
    for name in ("Inbox", "Drafts", "Sent", "Junk", "Trash", "Archive"):
        assert name in folders, folders
    assert len(subjects(page)) == len(SEED)
    screens.shot("inbox")

    # Sorting (Roundcube asks the server: SORT): by size, by sent date, by sender.
    list_options(page, sort_col="size", sort_ord="DESC")
    assert subjects(page) == expected_order("size", reverse=True)
    list_options(page, sort_col="date", sort_ord="ASC")
    assert subjects(page) == expected_order("date")
    list_options(page, sort_col="from", sort_ord="ASC")
    assert subjects(page) == expected_order("from")
    screens.shot("sorted-by-sender")

    # Threads (the server's THREAD=REFERENCES): the Projet replies hang under it.
    list_options(page, sort_col="date", sort_ord="DESC", mode="threads")
    rows = page.locator("#messagelist tbody tr")
    root = page.locator("#messagelist tbody tr", has_text="Projet").first
    assert "thread" in (root.get_attribute("class") or "")
    children = [
        rows.nth(i).locator("td.subject span.subject").inner_text()
        for i in range(rows.count())
        if "thread" in (rows.nth(i).get_attribute("class") or "")
    ]
    assert {"Projet", "Re: Projet", "RE: Projet", "re: projet"} <= set(children), children
    screens.shot("threads")
    list_options(page, mode="list", sort_col="date", sort_ord="DESC")

    # Search: the quick search box (Roundcube runs SEARCH on the server).
    search = page.locator("#mailsearchform")
    search.fill("Invoice")
    search.press("Enter")
    wait_for(lambda: subjects(page) == ["Invoice 2024"], "the search result")
    page.locator("#searchform-reset, .searchbar a.reset").first.click()
    wait_for(lambda: len(subjects(page)) == len(SEED), "the full list again")

    # Read a message in the preview pane.
    select_message(page, "Réunion")
    frame = page.frame_locator("#messagecontframe")
    frame.locator("#messagebody").wait_for()
    assert "Reunion jeudi." in frame.locator("#messagebody").inner_text()
    screens.shot("reading")

    # Write and send a message with a 5 MB attachment to the mailbox's other address.
    attachment = tmp_path / "rapport-annuel.bin"
    attachment.write_bytes(os.urandom(ATTACHMENT))
    page.click("a.compose")
    page.wait_for_selector("#compose-subject")
    wait_idle(page)
    page.locator("#compose_to .recipient-input input").fill("info@monsite.be, ")
    page.fill("#compose-subject", "Rapport annuel")
    page.fill("#composebody", "Voici le rapport.")
    with page.expect_file_chooser() as chooser:
        page.click("#compose-attachments button.attach")
    chooser.value.set_files(str(attachment))
    page.locator("#attachment-list li", has_text="rapport-annuel.bin").wait_for(timeout=120_000)
    wait_for(lambda: page.locator("#attachment-list li.uploading").count() == 0, "the upload", 120)
    screens.shot("compose")
    page.click("button.send")
    page.wait_for_selector("#messagelist", timeout=120_000)

    def arrived() -> bytes | None:
        found = (d for _, d in messages(service.maildir) if b"Subject: Rapport annuel" in d)
        return next(found, None)

    received = wait_for(arrived, "the message in the INBOX", 120)
    parsed = email.message_from_bytes(received, policy=email.policy.default)
    parts = [p for p in parsed.iter_attachments() if p.get_filename() == "rapport-annuel.bin"]
    assert len(parts) == 1 and parts[0].get_content() == attachment.read_bytes()
    sent = wait_for(lambda: messages(service.maildir / ".Sent"), "the copy in Sent")
    assert b"Subject: Rapport annuel" in sent[0][1]
    assert len(sent[0][1]) > ATTACHMENT  # the whole message, attachment included

    # The copy in Sent opens, attachment listed.
    page.locator("#mailboxlist a", has_text="Sent").first.click()
    wait_idle(page)
    select_message(page, "Rapport annuel")
    frame = page.frame_locator("#messagecontframe")
    frame.locator("#attachment-list, .attachmentslist").first.wait_for(timeout=60_000)
    assert "rapport-annuel.bin" in frame.locator("body").inner_text()
    screens.shot("sent-copy")
    page.locator("#mailboxlist a", has_text="Inbox").first.click()
    wait_for(lambda: "Rapport annuel" in subjects(page), "the new message in the list")

    # Move a message to Archive (More > Move to... > Archive).
    select_message(page, "Invoice 2024")
    choose_in_menu(page, "#messagemenulink", "#message-menu a.move", "#folder-selector li a")
    page.locator("#folder-selector li a", has_text="Archive").first.click()
    wait_for(
        lambda: any(b"Invoice 2024" in d for _, d in messages(service.maildir / ".Archive")),
        "the message in Archive",
    )
    assert not any(b"Subject: Invoice 2024" in d for _, d in messages(service.maildir))

    # Flag one.
    select_message(page, "Bonjour")
    choose_in_menu(
        page, "#markmessagemenulink", "#markmessage-menu a.flag", "#messagelist tr.flagged"
    )
    wait_for(
        lambda: any(
            b"Subject: Bonjour\r\n" in d and "F" in p.name.split(":2,")[-1]
            for p, d in messages(service.maildir)
        ),
        "the \\Flagged flag on disk",
    )

    # Delete one: it goes to Trash, which the folder list shows.
    def in_trash() -> bool:
        return any(b"Subject: Fwd: Projet" in d for _, d in messages(service.maildir / ".Trash"))

    page.keyboard.press("Escape")  # the Mark menu, if still open, would take the click
    select_message(page, "Fwd: Projet")
    for _attempt in range(3):  # a click while the preview loads can be lost
        page.locator("#toolbar-menu a.delete").click()
        try:
            wait_for(in_trash, "the message in Trash", 10)
            break
        except AssertionError:
            if "Fwd: Projet" not in subjects(page):
                break
    wait_for(in_trash, "the message in Trash")
    wait_for(lambda: "Fwd: Projet" not in subjects(page), "the list without it")
    screens.shot("after-delete")
