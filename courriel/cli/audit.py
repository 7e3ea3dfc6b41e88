"""`courriel audit` and `courriel admin ...` (provider admin accounts)."""

from __future__ import annotations

import click

from courriel.cli.common import emit_json, json_option, needs_db, read_password_twice, table


def register(cli: click.Group) -> None:
    cli.add_command(audit)
    cli.add_command(admin)


@click.command()
@click.option("--domain", default="", help="Only changes to this domain.")
@click.option("--limit", default=50, show_default=True, help="How many entries.")
@json_option
@needs_db
def audit(domain: str, limit: int, as_json: bool) -> None:
    """The audit log: who changed what, and when."""
    from courriel.accounts.addresses import normalize_domain
    from courriel.audit.models import AuditEntry

    entries = AuditEntry.objects.all()
    if domain:
        entries = entries.filter(domain=normalize_domain(domain))
    rows = list(entries[: max(1, limit)])
    if as_json:
        emit_json(
            [
                {
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "role": e.role,
                    "action": e.action,
                    "target": e.target,
                    "domain": e.domain,
                    "details": e.details,
                }
                for e in rows
            ]
        )
        return
    table(
        ["When", "Who", "Action", "Target"],
        [[f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.target] for e in rows],
    )


@click.group()
def admin() -> None:
    """Provider admin accounts of the panel."""


@admin.command("list")
@json_option
@needs_db
def admin_list(as_json: bool) -> None:
    """List provider admins."""
    from django.contrib.auth.models import User

    rows = list(User.objects.filter(is_staff=True).order_by("username"))
    if as_json:
        emit_json(
            [
                {
                    "username": u.username,
                    "active": u.is_active,
                    "last_login": u.last_login.isoformat() if u.last_login else None,
                }
                for u in rows
            ]
        )
        return
    table(
        ["Username", "Active", "Last login"],
        [
            [
                u.username,
                "yes" if u.is_active else "no",
                f"{u.last_login:%Y-%m-%d %H:%M}" if u.last_login else "never",
            ]
            for u in rows
        ],
    )


@admin.command("create")
@click.argument("username")
@click.option("--password", help="Password (else generated and shown once).")
@needs_db
def admin_create(username: str, password: str | None) -> None:
    """Add a provider admin."""
    from courriel.accounts.admins import create_admin

    created, generated = create_admin(username, password)
    click.echo(f"Provider admin {created.username} created.")
    if generated:
        click.echo(f"Password: {generated}  (shown only this once)")


@admin.command("password")
@click.argument("username")
@click.option("--password", help="The new password (else asked twice).")
@click.option("--generate", is_flag=True, help="Generate one and show it once.")
@needs_db
def admin_password(username: str, password: str | None, generate: bool) -> None:
    """Change a provider admin's password."""
    from courriel.accounts.admins import set_admin_password

    if generate:
        new = set_admin_password(username, None)
        click.echo(f"New password for {username}: {new}  (shown only this once)")
        return
    set_admin_password(username, password if password is not None else read_password_twice())
    click.echo(f"Password of {username} changed.")


@admin.command("reset-2fa")
@click.argument("username")
@needs_db
def admin_reset_2fa(username: str) -> None:
    """Turn off a provider admin's two-factor sign-in (a lost phone)."""
    from django.contrib.auth.models import User

    from courriel.accounts.permissions import Actor
    from courriel.accounts.services.twofactor import reset
    from courriel.errors import NotFoundError

    user = User.objects.filter(username=username, is_staff=True).first()
    if user is None:
        raise NotFoundError(f"No provider admin named {username!r}.")
    reset(Actor.cli(), user)
    click.echo(f"Two-factor sign-in of {user.username} turned off.")
