"""The documentation says what the code does, where a test can tell: every `courriel`
command shown in a page exists with the options shown; every configuration section
and key a page names is one of `courriel/default_config.toml` (the file that documents
every key); every REST API route a page shows exists with its methods, and every route
of the API is shown somewhere. A renamed option, key or route fails here instead of
misleading a reader."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import click

import courriel
from courriel.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONFIG = tomllib.loads((Path(courriel.__file__).parent / "default_config.toml").read_text())
OPTION = re.compile(r"(?:^|[\[|(])(--?[a-zA-Z][\w-]*)")
CONFIG_NAME = re.compile(r"`\[([a-z_0-9]+)\](?: ([a-z_0-9]+))?`")


def command_lines() -> Iterator[tuple[str, str]]:
    """("page:line", command) for each `courriel ...` line of the pages' code blocks,
    continuation lines joined and comments dropped."""
    for page in sorted(DOCS.rglob("*.md")):
        in_code, pending, start = False, "", 0
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if line.startswith("```"):
                in_code = not in_code
                continue
            if not in_code:
                continue
            text = line.split(" #")[0].rstrip()
            if pending:
                pending += " " + text.strip()
            else:
                pending, start = text, number
            if pending.endswith("\\"):
                pending = pending[:-1]
                continue
            if pending.split()[:1] == ["courriel"]:
                yield f"{page.relative_to(DOCS)}:{start}", pending
            pending = ""


def _options(commands: list[click.Command]) -> set[str]:
    names: set[str] = set()
    for command in commands:
        for param in command.params:
            names.update(param.opts, param.secondary_opts)
    return names


def problems_of(command_line: str) -> list[str]:
    words = command_line.split()
    command: click.Command = cli
    chosen: list[click.Command] = [cli]
    at = 1
    while isinstance(command, click.Group) and at < len(words):
        names = words[at].split("|")  # `courriel user show|modify|delete`
        missing = [name for name in names if name not in command.commands]
        if missing:
            return [f"no command {' '.join(words[:at])} {name}" for name in missing]
        chosen = [command.commands[name] for name in names]
        command, at = chosen[0], at + 1
    if isinstance(command, click.Group):
        return []
    known = _options(chosen) | {"--help", "-h"}
    return [
        f"{' '.join(words[:at])} has no option {option}"
        for word in words[at:]
        for option in OPTION.findall(word)
        if option not in known
    ]


def test_every_command_shown_exists_with_its_options() -> None:
    lines = list(command_lines())
    assert len(lines) > 50  # the command-line page alone has dozens
    wrong = [f"{where}: {problem}" for where, line in lines for problem in problems_of(line)]
    assert not wrong, "\n".join(wrong)


def test_the_command_check_finds_a_wrong_command_and_option() -> None:
    assert problems_of("courriel user create monsite.be --nonsense x") == [
        "courriel user create has no option --nonsense"
    ]
    assert problems_of("courriel user frobnicate") == ["no command courriel user frobnicate"]
    assert (
        problems_of("courriel user autoreply monsite.be monsite0001 --interval 10m | --off") == []
    )


def test_every_configuration_name_in_the_pages_exists() -> None:
    wrong: list[str] = []
    for page in sorted(DOCS.rglob("*.md")):
        for section, key in CONFIG_NAME.findall(page.read_text()):
            if section == "section":  # "`[section] key`", the general form
                continue
            if section not in CONFIG or (key and key not in CONFIG[section]):
                wrong.append(f"{page.relative_to(DOCS)}: [{section}] {key}".rstrip())
    assert not wrong, "\n".join(wrong)


def test_the_configuration_table_names_real_keys_and_every_section() -> None:
    """The operator's table: each key of a row belongs to one of that row's sections,
    and every section of the configuration is somewhere in the documentation."""
    table = (DOCS / "operator" / "configuration.md").read_text()
    wrong: list[str] = []
    for row in table.splitlines():
        if not row.startswith("| `["):
            continue
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        sections = re.findall(r"`\[([a-z_0-9]+)\]`", cells[0])
        for key in re.findall(r"`([a-z_0-9]+)`", cells[1]):
            if not any(key in CONFIG.get(section, {}) for section in sections):
                wrong.append(f"{sections}: {key}")
    assert not wrong, "\n".join(wrong)
    everything = "\n".join(page.read_text() for page in DOCS.rglob("*.md"))
    named = set(re.findall(r"\[([a-z_0-9]+)\]", everything))
    assert set(CONFIG) <= named, sorted(set(CONFIG) - named)


ROUTE = re.compile(
    r"`((?:GET|POST|PATCH|PUT|DELETE)(?:/(?:GET|POST|PATCH|PUT|DELETE))*)\s+"
    r"((?:[^`\s{]|\{[^}`]*\})+)"  # "…/{own login}/password"
)
API_PREFIX = "/api/v1"


def _shape(path: str) -> str:
    """`/domains/{name}` and `/domains/{domain}` are the same route."""
    path = path.split("?")[0]
    path = path.removeprefix(API_PREFIX)
    return re.sub(r"\{[^}]+\}", "{}", path)


def _routes() -> dict[str, set[str]]:
    from courriel.api.routes import api

    paths = api.get_openapi_schema()["paths"]
    return {_shape(path): {method.upper() for method in ops} for path, ops in paths.items()}


def _documented(roots: set[str]) -> list[tuple[str, str, str]]:
    """(page, methods, path) of each "`GET/PATCH /domains/{name}`" of the API in the
    pages (the panel's and `/metrics` are other servers' paths); a path written
    "…/password" stands for any route ending so."""
    return [
        (str(page.relative_to(DOCS)), methods, path)
        for page in sorted(DOCS.rglob("*.md"))
        for methods, path in ROUTE.findall(page.read_text())
        if path.startswith("…") or _shape(path).split("/")[1] in roots
    ]


def _roots(routes: dict[str, set[str]]) -> set[str]:
    return {route.split("/")[1] for route in routes}


def _matches(path: str, route: str) -> bool:
    shape = _shape(path.lstrip("…"))
    return route.endswith(shape) if path.startswith("…") else route == shape


def test_every_api_route_shown_exists_with_its_methods() -> None:
    routes = _routes()
    documented = _documented(_roots(routes))
    assert len(documented) > 30
    wrong: list[str] = []
    for page, methods, path in documented:
        found = [route for route in routes if _matches(path, route)]
        for method in methods.split("/"):
            if not any(method in routes[route] for route in found):
                wrong.append(f"{page}: {method} {path}")
    assert not wrong, "\n".join(wrong)


def test_every_api_route_is_documented() -> None:
    routes = _routes()
    documented = _documented(_roots(routes))
    missing = [
        f"{sorted(methods)} {route}"
        for route, methods in routes.items()
        if not any(_matches(path, route) for _page, _methods, path in documented)
    ]
    assert not missing, "\n".join(missing)


def test_the_route_check_finds_a_wrong_route() -> None:
    routes = _routes()
    assert any(_matches("…/{login}/password", route) for route in routes)
    assert any(_matches("/api/v1/domains/{domain}", route) for route in routes)
    assert not any(_matches("/domains/{name}/frobnicate", route) for route in routes)
