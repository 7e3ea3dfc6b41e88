"""French, Dutch and English: chosen from the browser or the switcher, remembered for a
mailbox, with dates and sizes written each language's way; the catalogues translate
every string of the source, and the committed .mo files match the .po files."""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import courriel
from courriel.accounts.models import Mailbox
from courriel.accounts.services.mailboxes import create_mailbox
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.panel import Browser
from tests.fixtures.processes import InProcess

PACKAGE = Path(courriel.__file__).parent
ROOT = PACKAGE.parent


def test_browser_language_chooses_the_interface(browser: Browser, monsite: Customer) -> None:
    french = browser.get("/login/", HTTP_ACCEPT_LANGUAGE="fr-BE,fr;q=0.9").content.decode()
    assert 'lang="fr"' in french and "Rester connecté en permanence ?" in french
    dutch = browser.get("/login/", HTTP_ACCEPT_LANGUAGE="nl-BE").content.decode()
    assert "Aanmelding permanent onthouden?" in dutch
    other = browser.get("/login/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Remember login permanently?" in other


def test_the_switcher_wins_over_the_browser(owner_browser: Browser, monsite: Customer) -> None:
    response = owner_browser.post("/language/", {"language": "nl", "next": "/d/monsite.be/"})
    assert response["Location"] == "/d/monsite.be/"
    page = owner_browser.text("/d/monsite.be/", HTTP_ACCEPT_LANGUAGE="fr")
    assert "Informatie over de virtuele server" in page and "1 van 5" in page
    owner_browser.post("/language/", {"language": "xx", "next": "https://evil.example/"})
    assert "Informatie over de virtuele server" in owner_browser.text("/d/monsite.be/")
    assert Mailbox.objects.get(login="monsite").language == "nl"  # remembered


def test_sizes_and_dates_per_language(owner_browser: Browser, info: Mailbox) -> None:
    Mailbox.objects.filter(pk=info.pk).update(
        quota=3 * 1024**3 // 2, password_changed_at=datetime(2009, 1, 21, 12, tzinfo=UTC)
    )
    expected = {
        "en": ("1.5\u00a0GB", "30\u00a0GB", "Jan. 21, 2009", "9 additional mailboxes", "Unlimited"),
        "fr": (
            "1,5\u00a0Go",
            "30\u00a0Go",
            "21 janvier 2009",
            "9 boîtes mail supplémentaires",
            "Illimité",
        ),
        "nl": ("1,5\u00a0GB", "30\u00a0GB", "21 januari 2009", "nog 9 mailboxen", "Onbeperkt"),
    }
    for language, facts in expected.items():
        owner_browser.post("/language/", {"language": language})
        users = owner_browser.text("/d/monsite.be/users/")
        mailbox = owner_browser.text("/d/monsite.be/user/monsite0001/")
        assert facts[0] in users and facts[1] in users and facts[3] in users, language
        assert facts[2] in mailbox and facts[4] in mailbox, language


def test_plural_forms(owner_browser: Browser, monsite: Customer) -> None:
    owner_browser.post("/language/", {"language": "fr"})
    page = owner_browser.text("/d/monsite.be/users/")
    assert "Selon vos limites, 10 boîtes mail supplémentaires peuvent être ajoutées." in page
    owner_browser.post("/language/", {"language": "nl"})
    assert "Op basis van uw limieten kunnen nog 10 mailboxen worden toegevoegd." in (
        owner_browser.text("/d/monsite.be/users/")
    )


def test_catalogues_are_complete_and_compiled() -> None:
    """Every msgid has a French and a Dutch translation, none fuzzy, and the committed
    .mo files are what msgfmt makes of the .po files (CI needs no build step)."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "translations"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs Debian's gettext")
def test_catalogues_cover_every_string_of_the_source(tmp_path: Path) -> None:
    """Extract the strings again from a copy of the source (so the real catalogues are
    not touched) and check that none is left untranslated."""
    copy = tmp_path / "courriel"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "i18n_settings.py").write_text(
        f"from courriel.settings import *  # noqa\nLOCALE_PATHS = [{str(copy / 'locale')!r}]\n"
    )
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="i18n_settings",
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]),
    )
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "fr", "-l", "nl", "--no-location"],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
    )
    for language in ("fr", "nl"):
        po = copy / "locale" / language / "LC_MESSAGES" / "django.po"
        untranslated = subprocess.run(
            ["msgattrib", "--untranslated", "--no-obsolete", str(po)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert untranslated.count("msgid ") <= 1, f"{language}:\n{untranslated}"


def test_service_errors_speak_the_panel_s_language(
    owner_browser: Browser, monsite: Customer, info: Mailbox
) -> None:
    """A plan limit and an invalid address, refused by the services, in French; the
    English text is the one the CLI prints."""
    from tests.panel.test_account_mail import new_user
    from tests.panel.test_mailbox_pages import edit_form

    owner_browser.post("/language/", {"language": "fr"})
    too_big = owner_browser.post(
        "/d/monsite.be/user/monsite0001/", edit_form(info, quota_0="value", quota_1="31G")
    )
    assert (
        "Un quota de boîte mail de 31 Go dépasse les 30 Go d'espace de messagerie de "
        "monsite.be : choisissez au plus 30 Go."
    ) in html.unescape(too_big.content.decode())
    bad = owner_browser.post(
        "/d/monsite.be/user/monsite0001/", edit_form(info, forward="on", forward_to="info@")
    )
    assert "n'est pas une adresse e-mail" in html.unescape(bad.content.decode())
    owner_browser.post("/language/", {"language": "nl"})
    for n in range(9):
        create_mailbox(monsite.actor, monsite.domain, password=STRONG, real_name=f"n{n}")
    full = owner_browser.post(
        "/d/monsite.be/users/new/",
        new_user(login="extra", primary_local_part="extra"),
    )
    assert (
        "De formule van monsite.be staat 10 mailboxen toe en die zijn allemaal in gebruik"
        in html.unescape(full.content.decode())
    )


def test_the_command_line_keeps_english(cli: InProcess, monsite: Customer, settings: Any) -> None:
    settings.LANGUAGE_CODE = "fr"  # `[general] language = "fr"`: the panel's default
    refused = cli("user", "create", "monsite.be", "--pass", STRONG, "--quota", "31G", ok=False)
    assert "is more than the 30 GB of mail space of monsite.be" in refused.err
    assert (
        "courriel: Invalid size 'lots'"
        in cli("user", "create", "monsite.be", "--pass", STRONG, "--quota", "lots", ok=False).err
    )
