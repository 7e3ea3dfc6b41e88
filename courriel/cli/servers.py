"""`courriel server add|list|modify|delete`: the hosting servers."""

from __future__ import annotations

import click

from courriel.cli.common import confirm, emit_json, json_option, needs_db, table, yes_option


def register(cli: click.Group) -> None:
    cli.add_command(server)


@click.group()
def server() -> None:
    """Hosting servers (machines that host mail domains)."""


@server.command("add")
@click.argument("name")
@click.argument("hostname")
@click.option("--ip", "ip_address", help="IP address shared by its domains.")
@click.option("--admin-url", default="", help="Panel URL (default https://HOSTNAME:10000/).")
@click.option("--no-new-domains", is_flag=True, help="Do not place new domains on it.")
@json_option
@needs_db
def server_add(
    name: str,
    hostname: str,
    ip_address: str | None,
    admin_url: str,
    no_new_domains: bool,
    as_json: bool,
) -> None:
    """Add a hosting server, e.g. `courriel server add moses moses.all2all.org`."""
    from courriel.accounts.permissions import Actor
    from courriel.accounts.schemas import ServerOut
    from courriel.accounts.services.servers import add_server

    created = add_server(
        Actor.cli(),
        name,
        hostname,
        ip_address=ip_address,
        admin_url=admin_url,
        accepts_domains=not no_new_domains,
    )
    if as_json:
        emit_json(ServerOut.of(created))
    else:
        click.echo(f"Hosting server {created.name} ({created.hostname}) added.")


@server.command("list")
@json_option
@needs_db
def server_list(as_json: bool) -> None:
    """List hosting servers."""
    from courriel.accounts.schemas import ServerOut
    from courriel.accounts.services.servers import list_servers

    rows = [ServerOut.of(s) for s in list_servers()]
    if as_json:
        emit_json(rows)
        return
    table(
        ["Name", "Host name", "IP address", "Domains", "New domains", "Admin URL"],
        [
            [
                r.name,
                r.hostname,
                r.ip_address or "-",
                r.domains,
                "yes" if r.accepts_domains else "no",
                r.admin_url,
            ]
            for r in rows
        ],
    )


@server.command("modify")
@click.argument("name")
@click.option("--hostname")
@click.option("--ip", "ip_address")
@click.option("--admin-url")
@click.option(
    "--new-domains/--no-new-domains",
    "accepts_domains",
    default=None,
    help="Whether new domains may be placed on it.",
)
@needs_db
def server_modify(name: str, **options: object) -> None:
    """Change a hosting server."""
    from courriel.accounts.permissions import Actor
    from courriel.accounts.services.servers import get_server, modify_server

    changes = {key: value for key, value in options.items() if value is not None}
    if not changes:
        raise click.UsageError("Nothing to change: give at least one option.")
    modify_server(Actor.cli(), get_server(name), **changes)
    click.echo(f"Hosting server {name} changed.")


@server.command("delete")
@click.argument("name")
@yes_option
@needs_db
def server_delete(name: str, yes: bool) -> None:
    """Delete a hosting server that hosts no domain."""
    from courriel.accounts.permissions import Actor
    from courriel.accounts.services.servers import delete_server, get_server

    target = get_server(name)
    confirm(f"Delete hosting server {target.name}?", yes)
    delete_server(Actor.cli(), target)
    click.echo(f"Hosting server {name} deleted.")
