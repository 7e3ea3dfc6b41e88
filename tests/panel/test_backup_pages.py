"""Chapter 12 in the panel: the provider's backups page (snapshots, dumps, the last run)
and restores of anything; an owner's backups page restoring their own mailboxes; and
the mailbox download the manual leaves to desktop tools, for the user and the owner."""

from __future__ import annotations

import html
import io
import mailbox
import tarfile
from datetime import date
from pathlib import Path

import pytest

from courriel.accounts.models import Mailbox
from courriel.backup.policy import BackupPolicy
from courriel.mailstore.maildir import deliver
from tests.backup.mail import message
from tests.fixtures.accounts import Customer
from tests.fixtures.backups import maildir_of
from tests.fixtures.panel import Browser, signed_in


def restored_folder(login: str, domain: str) -> Path:
    return maildir_of(login, domain) / f".Restored {date.today().isoformat()}"


def messages_in(folder: Path) -> int:
    return sum(1 for sub in ("cur", "new") for _ in (folder / sub).iterdir())


def test_provider_sees_snapshots_dumps_and_the_last_run(
    backed_up: BackupPolicy, provider_browser: Browser
) -> None:
    page = provider_browser.text("/provider/backups/")
    assert str(backed_up.directory) in page
    assert "daily.0" in page and "succeeded" in page
    assert "courriel-" in page  # the database dump
    assert 'aria-current="page">Backups' in page
    assert "The newest</option>" in page


def test_provider_restores_a_mailbox_then_finds_it_already_there(
    backed_up: BackupPolicy, provider_browser: Browser
) -> None:
    form = {"domain": "autresite.be", "login": "autresite", "snapshot": ""}
    done = provider_browser.post("/provider/backups/", form)
    page = html.unescape(done.content.decode())
    assert "3 messages restored from snapshot daily.0" in page
    assert f"They are in the folder “Restored {date.today().isoformat()}”." in page
    assert messages_in(restored_folder("autresite", "autresite.be")) == 3
    again = html.unescape(provider_browser.post("/provider/backups/", form).content.decode())
    assert "0 messages restored" in again
    assert "3 messages were already there and were left alone." in again
    missing = provider_browser.post(
        "/provider/backups/", {**form, "message": "<nowhere@b.be>"}
    ).content.decode()
    assert "No message" in missing and "try an older snapshot" in missing
    unknown = provider_browser.post("/provider/backups/", {**form, "domain": "nope.be"})
    assert "No virtual server named" in html.unescape(unknown.content.decode())


def test_owner_restores_one_message_of_their_own_mailbox(
    backed_up: BackupPolicy, monsite: Customer
) -> None:
    owner = signed_in(monsite.owner)
    page = owner.text("/d/monsite.be/backups/")
    assert "daily.0" in page and "Virtual server" not in page  # the domain is this one
    # The user deleted a message; the owner puts it back where it was.
    inbox = maildir_of("monsite", "monsite.be") / "new"
    [lost] = [path for path in inbox.iterdir() if b"<m1@b.be>" in path.read_bytes()]
    lost.unlink()
    done = owner.post(
        "/d/monsite.be/backups/",
        {"login": "monsite", "message": "<m1@b.be>", "in_place": "on"},
    )
    assert "1 message restored" in done.content.decode()
    assert "They are back in the folders they came from." in done.content.decode()
    assert any(b"<m1@b.be>" in path.read_bytes() for path in inbox.iterdir())
    refused = owner.post("/d/monsite.be/backups/", {"login": "autresite"})
    assert "No mailbox with login" in html.unescape(refused.content.decode())
    assert owner.get("/d/autresite.be/backups/").status_code == 404
    assert not restored_folder("autresite", "autresite.be").exists()


def test_a_mailbox_user_downloads_their_mail_as_mbox(
    info_browser: Browser, info: Mailbox, tmp_path: Path
) -> None:
    maildir = maildir_of(info.login, "monsite.be")
    for n in range(3):
        deliver(maildir, message(n), durable=False)
    deliver(maildir, message(9), folder="Sent", flags="S", durable=False)
    page = info_browser.text("/me/")
    assert 'href="/me/download?format=mbox"' in page
    assert 'href="/me/download?format=maildir"' in page
    response = info_browser.get("/me/download", {"format": "mbox"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/mbox"
    assert response["Content-Disposition"].startswith('attachment; filename="monsite0001-')
    assert "no-store" in response["Cache-Control"]
    saved = tmp_path / "mine.mbox"
    saved.write_bytes(b"".join(response.streaming_content))  # type: ignore[arg-type]
    box = mailbox.mbox(saved)
    subjects = sorted(m["Subject"] for m in box)
    assert subjects == ["message 0", "message 1", "message 2", "message 9"]
    assert info_browser.get("/me/download", {"format": "zip"}).status_code == 400


def test_the_owner_downloads_a_mailbox_as_a_maildir_archive(
    owner_browser: Browser, info: Mailbox
) -> None:
    deliver(maildir_of(info.login, "monsite.be"), message(1), durable=False)
    edit = owner_browser.text(f"/d/monsite.be/user/{info.login}/")
    assert f'href="/d/monsite.be/user/{info.login}/download?format=maildir"' in edit
    response = owner_browser.get(f"/d/monsite.be/user/{info.login}/download?format=maildir")
    assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
    data = b"".join(response.streaming_content)  # type: ignore[arg-type]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        names = archive.getnames()
    assert any(name.startswith("monsite0001/Maildir/new/") for name in names)
    # Another customer's mailbox, and the owner's own under another domain, are not found.
    assert owner_browser.get("/d/monsite.be/user/autresite/download").status_code == 404
    assert owner_browser.get("/d/autresite.be/user/autresite/download").status_code == 404


NO_FOLDER = {
    "en": "There is no folder 'Nowhere' in autresite's mailbox in snapshot daily.0",
    "fr": (
        "Il n'y a pas de dossier 'Nowhere' dans la boîte mail de autresite dans la "
        "sauvegarde daily.0"
    ),
    "nl": "Er is geen map 'Nowhere' in de mailbox van autresite in back-up daily.0",
}


@pytest.mark.parametrize("language", ["en", "fr", "nl"])
def test_restoring_a_folder_that_is_not_in_the_snapshot_says_so(
    backed_up: BackupPolicy, provider_browser: Browser, language: str
) -> None:
    """Issue 16, item 8: it reported "0 messages restored into 'Restored ...'"."""
    form = {"domain": "autresite.be", "login": "autresite", "snapshot": "", "folder": "Nowhere"}
    page = html.unescape(
        provider_browser.post(
            "/provider/backups/", form, HTTP_ACCEPT_LANGUAGE=language
        ).content.decode()
    )
    assert NO_FOLDER[language] in page
    assert not restored_folder("autresite", "autresite.be").exists()
    inbox = provider_browser.post("/provider/backups/", {**form, "folder": "INBOX"})
    assert "3 messages restored" in html.unescape(inbox.content.decode())
