"""`courriel token ...`: API tokens (the panel's "API tokens" page, for the provider)."""

from __future__ import annotations

import click

from courriel.cli.common import confirm, emit_json, json_option, needs_db, table, yes_option


def register(cli: click.Group) -> None:
    cli.add_command(token)


@click.group()
def token() -> None:
    """API tokens: create (shown once), list, revoke."""


@token.command("create")
@click.option("--name", required=True, help="What the token is for, e.g. 'billing script'.")
@click.option("--admin", "admin", metavar="USERNAME", help="A provider admin's token.")
@click.option("--login", "login", metavar="LOGIN", help="A domain owner's or mailbox's token.")
@json_option
@needs_db
def token_create(name: str, admin: str | None, login: str | None, as_json: bool) -> None:
    """Create a token acting as a provider admin (--admin) or a mailbox (--login)."""
    from courriel.accounts.permissions import Actor
    from courriel.api.tokens import create_token

    if bool(admin) == bool(login):
        raise click.UsageError("Give exactly one of --admin USERNAME or --login LOGIN.")
    created = create_token(Actor.cli(), name, admin=admin, login=login)
    if as_json:
        emit_json({"id": created.token.pk, "holder": created.token.holder, "token": created.secret})
        return
    click.echo(f"Token {created.token.pk} for {created.token.holder} ({name}):")
    click.echo(created.secret)
    click.echo("It is shown only this once: keep it now. Use: Authorization: Bearer <token>")


@token.command("list")
@json_option
@needs_db
def token_list(as_json: bool) -> None:
    """Every API token (never the token itself: only its first characters)."""
    from courriel.accounts.permissions import Actor
    from courriel.api.tokens import tokens_of

    rows = list(tokens_of(Actor.cli(), everyone=True))
    if as_json:
        emit_json(
            [
                {
                    "id": t.pk,
                    "name": t.name,
                    "prefix": t.prefix,
                    "holder": t.holder,
                    "created_at": t.created_at.isoformat(),
                    "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                }
                for t in rows
            ]
        )
        return
    table(
        ["Id", "Token", "Holder", "Name", "Last used"],
        [
            [
                t.pk,
                f"{t.prefix}…",
                t.holder,
                t.name,
                f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never",
            ]
            for t in rows
        ],
    )


@token.command("revoke")
@click.argument("token_id", type=int)
@yes_option
@needs_db
def token_revoke(token_id: int, yes: bool) -> None:
    """Delete a token: programs using it lose access at once."""
    from courriel.accounts.permissions import Actor
    from courriel.api.tokens import revoke_token

    confirm(f"Revoke API token {token_id}?", yes)
    revoked = revoke_token(Actor.cli(), token_id)
    click.echo(f"Token {token_id} ({revoked.name}) of {revoked.holder} revoked.")
