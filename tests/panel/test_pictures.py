"""The comparison of the README's pictures with what the browser walk takes: the
same picture passes, a few pixels of font smoothing pass, a changed page fails with
what to do, and so do a new size and a picture that is not committed."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.fixtures import pictures


@pytest.fixture
def committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    monkeypatch.setattr(pictures, "README_PICTURES", folder)
    picture = Image.new("RGB", (400, 300), "#f3f5f8")
    ImageDraw.Draw(picture).text((20, 20), "Mail Users", fill="#1d2733")
    picture.save(folder / "mail-users.png")
    return folder / "mail-users.png"


def candidate(tmp_path: Path, change: object = None, size: tuple[int, int] = (400, 300)) -> Path:
    picture = Image.new("RGB", size, "#f3f5f8")
    draw = ImageDraw.Draw(picture)
    draw.text((20, 20), "Mail Users", fill="#1d2733")
    if callable(change):
        change(draw)
    path = tmp_path / "mail-users.png"
    picture.save(path)
    return path


def test_the_same_picture_passes(committed: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    assert pictures.compare(candidate(tmp_path / "a")) is None


def test_font_smoothing_passes(committed: Path, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    shifted = candidate(tmp_path / "b", lambda d: d.point([(5, 5), (6, 5), (7, 5)], fill="#000"))
    assert pictures.compare(shifted) is None


def test_a_changed_page_fails(committed: Path, tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    changed = candidate(tmp_path / "c", lambda d: d.rectangle((20, 60, 220, 120), fill="#1b5599"))
    problem = pictures.compare(changed)
    assert problem is not None and "of the pixels differ" in problem
    assert "scripts/screenshots" in problem


def test_a_new_size_or_a_missing_picture_fails(committed: Path, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    assert "committed" in (pictures.compare(candidate(tmp_path / "d", size=(400, 320))) or "")
    committed.unlink()
    assert "is not committed" in (pictures.compare(candidate(tmp_path / "d")) or "")
