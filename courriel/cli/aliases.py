"""`courriel alias ...`: mail aliases (chapter 10)."""

from __future__ import annotations

from typing import Any

import click

from courriel.cli.common import confirm, emit_json, json_option, needs_db, table, yes_option


def register(cli: click.Group) -> None:
    cli.add_command(alias)


@click.group()
def alias() -> None:
    """Mail aliases: forward a name to mailboxes, other addresses, everyone, or bounce."""


def _context(domain_name: str) -> tuple[Any, Any]:
    from courriel.accounts.permissions import Actor, get_domain

    actor = Actor.cli()
    return actor, get_domain(actor, domain_name)


def _destination_options(func: Any) -> Any:
    options = [
        click.option(
            "--to",
            "forward_to",
            multiple=True,
            help="Forward to this address (repeatable), e.g. frederic@gmail.com.",
        ),
        click.option(
            "--mailbox",
            "mailboxes",
            multiple=True,
            help="Deliver to this mailbox of the domain (repeatable).",
        ),
        click.option(
            "--everyone", is_flag=True, default=None, help="Forward to everyone in the domain."
        ),
        click.option("--bounce", is_flag=True, default=None, help="Bounce mail back."),
        click.option("--message", "bounce_message", help="Text of the bounce."),
        click.option("--desc", "description", help="Description."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@alias.command("create")
@click.argument("domain")
@click.argument("name", required=False)
@click.option(
    "--catch-all",
    is_flag=True,
    help="The catch-all: every address of the domain that is not listed.",
)
@_destination_options
@needs_db
def alias_create(
    domain: str,
    name: str | None,
    catch_all: bool,
    forward_to: tuple[str, ...],
    mailboxes: tuple[str, ...],
    everyone: bool | None,
    bounce: bool | None,
    bounce_message: str | None,
    description: str | None,
) -> None:
    """Add an alias NAME@DOMAIN (or --catch-all)."""
    from courriel.accounts.services.aliases import alias_email, create_alias

    if bool(name) == catch_all:
        raise click.UsageError("Give the alias NAME, or --catch-all (not both).")
    actor, target = _context(domain)
    created = create_alias(
        actor,
        target,
        "" if catch_all else name,
        mailboxes=mailboxes,
        forward_to=forward_to,
        everyone=bool(everyone),
        bounce=bool(bounce),
        bounce_message=bounce_message or "",
        description=description or "",
    )
    click.echo(f"Alias {alias_email(created)} created.")


@alias.command("list")
@click.argument("domain")
@json_option
@needs_db
def alias_list(domain: str, as_json: bool) -> None:
    """Mail aliases of DOMAIN with their destinations."""
    from courriel.accounts.schemas import AliasOut
    from courriel.accounts.services.aliases import aliases_of, describe_destinations

    actor, target = _context(domain)
    aliases = list(aliases_of(actor, target))
    if as_json:
        emit_json([AliasOut.of(a) for a in aliases])
        return
    rows = []
    for item in aliases:
        shown = AliasOut.of(item)
        rows.append(
            [
                shown.name if not shown.catch_all else "* (all mailboxes)",
                "; ".join(describe_destinations(item)),
            ]
        )
    table(["Name", "Alias destinations"], rows)


@alias.command("modify")
@click.argument("domain")
@click.argument("name")
@click.option("--rename", help="New name.")
@_destination_options
@needs_db
def alias_modify(
    domain: str,
    name: str,
    rename: str | None,
    forward_to: tuple[str, ...],
    mailboxes: tuple[str, ...],
    everyone: bool | None,
    bounce: bool | None,
    bounce_message: str | None,
    description: str | None,
) -> None:
    """Change an alias; --to and --mailbox replace the current lists."""
    from courriel.accounts.services.aliases import get_alias, modify_alias

    actor, target = _context(domain)
    changes: dict[str, Any] = {}
    if rename is not None:
        changes["name"] = rename
    if forward_to:
        changes["forward_to"] = list(forward_to)
    if mailboxes:
        changes["mailboxes"] = list(mailboxes)
    if everyone is not None:
        changes["everyone"] = everyone
    if bounce is not None:
        changes["bounce"] = bounce
    if bounce_message is not None:
        changes["bounce_message"] = bounce_message
    if description is not None:
        changes["description"] = description
    if not changes:
        raise click.UsageError("Nothing to change: give at least one option.")
    modify_alias(actor, get_alias(actor, target, name), **changes)
    click.echo(f"Alias {name} changed.")


@alias.command("delete")
@click.argument("domain")
@click.argument("names", nargs=-1, required=True)
@yes_option
@needs_db
def alias_delete(domain: str, names: tuple[str, ...], yes: bool) -> None:
    """Delete aliases ("Delete Selected Aliases"); '*' is the catch-all."""
    from courriel.accounts.services.aliases import delete_aliases, get_alias

    actor, target = _context(domain)
    aliases = [get_alias(actor, target, name) for name in names]
    confirm(f"Delete {len(aliases)} alias(es): {', '.join(names)}?", yes)
    click.echo("Deleted: " + ", ".join(delete_aliases(actor, aliases)))
