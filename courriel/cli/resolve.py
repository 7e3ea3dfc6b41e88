"""`courriel resolve ADDRESS`: what happens to mail for an address, and why."""

from __future__ import annotations

import click

from courriel.cli.common import emit_json, json_option, needs_db

_SUMMARY = {
    "deliver": "accepted",
    "unknown": "unknown recipient (refused with 550 5.1.1)",
    "bounce": "bounced (refused with 550)",
    "not_local": "not a domain hosted here (relayed only for signed-in users)",
    "loop": "alias loop (refused with 554 5.4.6)",
    "invalid": "not a valid address (refused with 501 5.1.3)",
}


def register(cli: click.Group) -> None:
    cli.add_command(resolve)


@click.command()
@click.argument("address")
@click.option("--date", "on_date", help="Resolve as on this day (YYYY-MM-DD), for auto-replies.")
@json_option
@needs_db
def resolve(address: str, on_date: str | None, as_json: bool) -> None:
    """Show which mailboxes get a copy of mail for ADDRESS, which addresses get a
    forward, whether an automatic reply may be sent, or why it is refused."""
    from datetime import datetime, time

    from django.utils import timezone

    from courriel.accounts.resolution import resolve as resolve_address
    from courriel.units import parse_date

    now = None
    if on_date:
        day = parse_date(on_date)
        assert day is not None
        now = timezone.make_aware(datetime.combine(day, time(12)))
    result = resolve_address(address, now=now)
    if as_json:
        emit_json(result.as_dict())
        return
    click.echo(f"{result.recipient}: {_SUMMARY[result.status]}")
    for copy in result.copies:
        click.echo(f"  deliver to mailbox {copy.login} (as {copy.address})")
    for target in result.forwards:
        click.echo(f"  forward to {target}")
    if result.status == "bounce" and result.bounce_message:
        click.echo(f"  bounce message: {result.bounce_message}")
    if result.autoreplies:
        click.echo("  automatic reply may be sent")
    click.echo("Trace:")
    for line in result.trace:
        click.echo(f"  {line}")
    if not result.accepted:
        raise SystemExit(1)
