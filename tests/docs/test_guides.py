"""The user guides name the panel's buttons, menu entries and pages as the panel
writes them: every **bold** name in a guide is one of the panel's texts, in English for
the English guides and as the French catalogue translates it for the French ones. A
renamed button, or a guessed translation, fails here."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest

import courriel

DOCS = Path(__file__).resolve().parents[2] / "docs"
FRENCH = Path(courriel.__file__).parent / "locale" / "fr" / "LC_MESSAGES" / "django.mo"
BOLD = re.compile(r"\*\*([^*]+)\*\*")
PLACEHOLDER = re.compile(r"%\\\(\w+\\\)[sd]|\\\{\\\{\\ \w+\\ \\\}\\\}")


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().rstrip(".:… ").casefold()


class Texts:
    """The panel's texts in one language: a name is one of them when it is part of a
    text ("Search" of "Search mailboxes") or a text with its values filled in ("View
    as monsite" for "View as %(owner)s")."""

    def __init__(self, texts: list[str]) -> None:
        self.plain = [_plain(text) for text in texts if text]
        self.templates = [
            re.compile(PLACEHOLDER.sub(".+", re.escape(text)), re.IGNORECASE)
            for text in self.plain
            if "%(" in text or "{{" in text
        ]

    def has(self, name: str) -> bool:
        wanted = _plain(name)
        return any(wanted in text for text in self.plain) or any(
            template.fullmatch(wanted) for template in self.templates
        )


def _catalogue() -> dict[object, str]:
    """msgid (or (msgid, n) for plurals) to the French text, from the compiled catalogue."""
    with FRENCH.open("rb") as compiled:
        return dict(gettext.GNUTranslations(compiled)._catalog)  # type: ignore[attr-defined]


def _msgid(key: object) -> str:
    return key[0] if isinstance(key, tuple) else str(key)


def english() -> Texts:
    return Texts([_msgid(key) for key in _catalogue()])


def french() -> Texts:
    return Texts(list(_catalogue().values()))


GUIDES = {
    "guide/provider.md": english,
    "guide/owner.md": english,
    "guide/mailbox.md": english,
    "fr/proprietaire.md": french,
    "fr/utilisateur.md": french,
}


@pytest.mark.parametrize("guide", sorted(GUIDES))
def test_the_guide_names_what_the_panel_shows(guide: str) -> None:
    texts = GUIDES[guide]()
    names = BOLD.findall((DOCS / guide).read_text())
    assert len(names) >= 5, guide
    unknown = [name for name in names if not texts.has(name)]
    assert not unknown, unknown


def test_a_guessed_name_is_caught() -> None:
    assert english().has("View as monsite") and english().has("Change my password")
    assert not english().has("Show password")
    assert french().has("Changer mon mot de passe")
    assert not french().has("Modifier mon mot de passe")
