"""Shared pieces of the command line: output (tables and --json), confirmation,
the DOMAIN argument (positional or Virtualmin's --domain), and option parsing."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import click

from courriel.errors import ValidationError

F = TypeVar("F", bound=Callable[..., Any])


def needs_db(func: F) -> F:
    """Set Django up and make sure the database is initialised before the command runs.

    The command runs with no language active, so the services' messages (translated
    for the panel) stay in English here, whatever `[general] language` says."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from django.utils import translation

        from courriel.bootstrap import initialize
        from courriel.config import get_config
        from courriel.privileges import drop_for_command

        drop_for_command(get_config())
        result = initialize()
        if result.admin_password:
            click.echo(
                f"First start: provider admin account {result.admin_username!r} created with "
                f"password {result.admin_password} (shown only this once).",
                err=True,
            )
        with translation.override(None):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def yes_option(func: F) -> F:
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(func)


def emit_json(data: Any) -> None:
    from pydantic import BaseModel

    def convert(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        if isinstance(value, list | tuple):
            return [convert(item) for item in value]
        if isinstance(value, dict):
            return {key: convert(item) for key, item in value.items()}
        return value

    click.echo(json.dumps(convert(data), indent=2, ensure_ascii=False, default=str))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False))
    click.echo(line.rstrip())
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())


def facts(pairs: Iterable[tuple[str, Any]]) -> None:
    pairs = list(pairs)
    width = max((len(label) for label, _ in pairs), default=0)
    for label, value in pairs:
        click.echo(f"{label.ljust(width)}  {'' if value is None else value}")


def confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError(f"{question} Add --yes to confirm when not on a terminal.")
    if not click.confirm(question, default=False):
        raise click.Abort()


def domain_argument(func: F) -> F:
    """DOMAIN as the first argument, or as --domain like `virtualmin create-user`."""

    @click.argument("domain_arg", metavar="DOMAIN", required=False)
    @click.option("--domain", "domain_opt", metavar="DOMAIN", help="Same as the DOMAIN argument.")
    @functools.wraps(func)
    def wrapper(*args: Any, domain_arg: str | None, domain_opt: str | None, **kwargs: Any) -> Any:
        domain = domain_opt or domain_arg
        if not domain:
            raise click.UsageError("Missing the DOMAIN (e.g. monsite.be).")
        if domain_opt and domain_arg:
            # `--domain d LOGIN`: the positional was really the next argument.
            raise click.UsageError("Give the domain once, either as DOMAIN or with --domain.")
        return func(*args, domain=domain, **kwargs)

    return wrapper  # type: ignore[return-value]


def parse_count(text: str | None) -> int | None:
    """A limit: a whole number or 'unlimited'."""
    if text is None:
        return None
    if text.strip().lower() in {"unlimited", "none", "-"}:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValidationError(f"Invalid limit {text!r}: a whole number or 'unlimited'.") from None
    if value < 0:
        raise ValidationError(f"Invalid limit {text!r}: it cannot be negative.")
    return value


def read_password_twice() -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            raise ValidationError("No password given on standard input.")
        return line
    first = click.prompt("New password", hide_input=True)
    second = click.prompt("New password (again)", hide_input=True)
    if first != second:
        raise ValidationError("The two passwords differ: nothing was changed.")
    return first
