"""The documentation site (`mkdocs.yml`, `docs/`) builds in strict mode, and no link
of it or of the README leads nowhere: a page moved, a heading renamed or a file
forgotten in the menu fails the test run, as it fails CI."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    built = tmp_path_factory.mktemp("site")
    done = build(ROOT / "mkdocs.yml", built)
    assert done.returncode == 0, done.stdout + done.stderr
    yield built


class _Links(HTMLParser):
    """Every href/src of a page, and every id it defines."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)
            elif name in ("id", "name") and value:
                self.ids.add(value)


def _parsed(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text())
    return parser


def _internal(link: str) -> bool:
    parts = urlsplit(link)
    return not (parts.scheme or parts.netloc or link == "#")


def test_the_site_builds_in_strict_mode(site: Path) -> None:
    """The build itself checks links between pages and to headings (mkdocs.yml's
    `validation`), and pages left out of the menu; strict makes each an error."""
    for page in ("index.html", "guide/owner.html", "fr/proprietaire.html", "benchmarks.html"):
        assert (site / page).is_file(), page
    assert (site / "screenshots" / "statistics.png").is_file()


def test_the_french_guides_are_marked_french(site: Path) -> None:
    """A screen reader reads a page in the language its <html lang> names."""
    assert '<html lang="fr"' in (site / "fr" / "proprietaire.html").read_text()
    assert '<html lang="fr"' in (site / "fr" / "utilisateur.html").read_text()
    assert '<html lang="en"' in (site / "guide" / "owner.html").read_text()


def test_every_link_of_the_built_site_leads_somewhere(site: Path) -> None:
    """Beyond the build's own check: every relative link of every page (the menu, the
    theme's, raw HTML in a page) names a file that exists, and an id that it has."""
    pages = {page: _parsed(page) for page in site.rglob("*.html")}
    broken: list[str] = []
    for page, parsed in pages.items():
        for link in parsed.links:
            if not _internal(link):
                continue
            parts = urlsplit(link)
            path = unquote(parts.path)
            if not path:
                target = page
            elif path.startswith("/"):  # 404.html, served at any depth, names the root
                target = (site / path.lstrip("/")).resolve()
            else:
                target = (page.parent / path).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {link}")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parsed(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)}: {link} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_readme_links_into_the_documentation(site: Path) -> None:
    """The README is what GitHub shows first: each of its links into `docs/` leads to
    a page of the site (and to a heading of it when it names one)."""
    readme = (ROOT / "README.md").read_text()
    links = [link for link in MARKDOWN_LINK.findall(readme) if _internal(link)]
    assert any(link.startswith("docs/guide/") for link in links)
    for link in links:
        parts = urlsplit(link)
        target = ROOT / unquote(parts.path)
        assert target.exists(), link
        if parts.fragment:
            built = site / target.relative_to(DOCS).with_suffix(".html")
            assert unquote(parts.fragment) in _parsed(built).ids, link


def _copy_of_the_site(tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    (copy / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "mkdocs_hooks.py", copy / "scripts")
    return copy


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    """The check can fail: a link to a missing page and one to a missing heading each
    stop a strict build, with the page and the link named."""
    copy = _copy_of_the_site(tmp_path)
    with (copy / "docs" / "guide" / "owner.md").open("a") as page:
        page.write(
            "\nSee [the plans](../plans.md) and [greylisting](../mail/greylisting.md#nope).\n"
        )
    done = build(copy / "mkdocs.yml", tmp_path / "site")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "'../plans.md'" in output and "#nope" in output


def test_a_page_left_out_of_the_menu_fails_the_build(tmp_path: Path) -> None:
    copy = _copy_of_the_site(tmp_path)
    (copy / "docs" / "forgotten.md").write_text("# Forgotten\n")
    done = build(copy / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    assert "forgotten.md" in done.stdout + done.stderr
