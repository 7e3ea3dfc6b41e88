"""MkDocs hook (mkdocs.yml `hooks:`): the pages under `fr/` are French, so their
<html lang> says so and a screen reader reads them with a French voice; the theme
gives every page the site's one locale."""

from __future__ import annotations

from typing import Any

LANGUAGES = {"fr/": "fr"}


def on_post_page(output: str, page: Any, config: Any) -> str:
    for prefix, language in LANGUAGES.items():
        if page.file.src_uri.startswith(prefix):
            return output.replace('<html lang="en"', f'<html lang="{language}"', 1)
    return output
