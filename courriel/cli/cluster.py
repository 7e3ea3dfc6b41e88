"""Several hosting servers (the README's "Several hosting servers"): `courriel domain
move`, `courriel domain moves`, `courriel server forget-node`; `courriel status --all`
is in queue.py with the rest of `status`."""

from __future__ import annotations

import time
from dataclasses import asdict

import click

from courriel.cli.common import emit_json, json_option, needs_db, table, yes_option


def register(cli: click.Group) -> None:
    from courriel.cli.domains import domain
    from courriel.cli.servers import server

    domain.add_command(domain_move)
    domain.add_command(domain_moves)
    server.add_command(server_forget_node)


@click.command("move")
@click.argument("name", metavar="DOMAIN")
@click.option("--to", "target", metavar="SERVER", help="The hosting server to move it to.")
@click.option("--cancel", is_flag=True, help="Cancel the move under way (before its switch).")
@click.option("--no-wait", is_flag=True, help="Return at once; `courriel domain moves` follows it.")
@json_option
@needs_db
def domain_move(name: str, target: str | None, cancel: bool, no_wait: bool, as_json: bool) -> None:
    """Move a domain (and its sub-servers) with all its mail to another hosting server,
    e.g. `courriel domain move monsite.be --to moses`. Mail keeps arriving and nothing
    is lost; the target server's `courriel serve` does the work, which goes on if this
    command is interrupted (run it again to follow it)."""
    from courriel.accounts.permissions import Actor
    from courriel.cluster.moves import MoveView, cancel_move, get_move, start_move

    if cancel == bool(target):
        raise click.UsageError("Give either --to SERVER or --cancel.")
    if cancel:
        move = cancel_move(Actor.cli(), name)
        click.echo(f"Cancelling the move of {move.domain.display_name} to {move.target.name}.")
        return
    assert target is not None
    move = start_move(Actor.cli(), name, target)
    view = MoveView.of(move)
    if no_wait:
        _show(view, as_json)
        return
    last = ""
    try:
        while True:
            view = MoveView.of(get_move(move.pk))
            line = view.progress_line()
            if line != last and not as_json:
                click.echo(line)
                last = line
            if view.state in {"done", "cancelled"}:
                break
            time.sleep(1)
    except KeyboardInterrupt:
        click.echo(
            "Stopped watching; the move goes on (`courriel domain moves` shows it, "
            f"`courriel domain move {name} --cancel` cancels it before its switch).",
            err=True,
        )
        raise SystemExit(130) from None
    if as_json:
        emit_json(_json(view))
    if view.state == "cancelled":
        raise SystemExit(1)


def _json(view: object) -> dict[str, object]:
    data = asdict(view)  # type: ignore[call-overload]
    data["percent"] = view.percent  # type: ignore[attr-defined]
    return data


def _show(view: object, as_json: bool) -> None:
    if as_json:
        emit_json(_json(view))
    else:
        click.echo(view.progress_line())  # type: ignore[attr-defined]


@click.command("moves")
@click.argument("name", metavar="[DOMAIN]", required=False)
@json_option
@needs_db
def domain_moves(name: str | None, as_json: bool) -> None:
    """Domain moves, under way and done, with their progress."""
    from courriel.accounts.permissions import Actor
    from courriel.cluster.moves import MoveView, list_moves

    views = [MoveView.of(m) for m in list_moves(Actor.cli(), name)]
    if as_json:
        emit_json([_json(v) for v in views])
        return
    table(
        ["Domain", "From", "To", "State", "Progress", "Late", "Started"],
        [
            [
                v.domain,
                v.source,
                v.target,
                v.state + (" (cancelling)" if v.cancel_requested and v.state == "copying" else ""),
                f"{v.percent}% of {v.files_total:,} files",
                v.late_messages,
                v.created_at.strftime("%Y-%m-%d %H:%M"),
            ]
            for v in views
        ],
    )


@click.command("forget-node")
@click.argument("name")
@yes_option
@needs_db
def server_forget_node(name: str, yes: bool) -> None:
    """Forget the machine registered as hosting server NAME (its secret and address),
    so that a replacement machine can start as NAME. Its domains stay on NAME."""
    from courriel.accounts.permissions import Actor
    from courriel.accounts.services.servers import get_server
    from courriel.cli.common import confirm
    from courriel.cluster.registry import forget

    target = get_server(name)
    confirm(
        f"Forget the machine running as {target.name}? Stop it first: two machines must "
        "never run as one hosting server.",
        yes,
    )
    if forget(Actor.cli(), target):
        click.echo(f"{target.name} may now be started on its replacement machine.")
    else:
        click.echo(f"No machine was registered as {target.name}.")
