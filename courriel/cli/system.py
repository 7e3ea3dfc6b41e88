"""`courriel init`, `courriel serve` and `courriel config`."""

from __future__ import annotations

import click
from django.db import DatabaseError

import courriel
from courriel.cli.common import emit_json, json_option
from courriel.config import default_config_text, get_config
from courriel.errors import ServiceUnavailableError


def register(cli: click.Group) -> None:
    cli.add_command(init)
    cli.add_command(upgrade)
    cli.add_command(serve)
    cli.add_command(config)
    cli.add_command(smtp_worker)


@click.command()
def init() -> None:
    """Create the data directory, database, default plans, TLS certificate and admin."""
    from courriel.bootstrap import initialize
    from courriel.privileges import drop_for_command

    cfg = get_config()
    drop_for_command(cfg)
    result = initialize(cfg)
    click.echo(f"Data directory: {cfg.data_dir}")
    _announce(result)


@click.command()
@click.option("--check", is_flag=True, help="Only say what would be applied.")
@json_option
def upgrade(check: bool, as_json: bool) -> None:
    """Bring the database up to this version after installing it (take a backup
    first: `courriel backup run`). `courriel serve` does this at start too; a database
    that a newer version upgraded is refused."""
    from courriel.bootstrap import initialize, pending_migrations, setup_django
    from courriel.privileges import drop_for_command

    cfg = get_config()
    drop_for_command(cfg)
    setup_django()
    try:
        pending = pending_migrations()
    except DatabaseError as error:
        raise ServiceUnavailableError(f"Cannot reach the database ({error}).") from None
    if not check and pending:
        initialize(cfg)
    shown = {"version": courriel.__version__, "pending" if check else "applied": pending}
    if as_json:
        emit_json(shown)
        return
    if not pending:
        click.echo(f"The database is up to date for Courriel {courriel.__version__}.")
        return
    verb = "Would apply" if check else "Applied"
    click.echo(f"{verb} {len(pending)} migration(s): {', '.join(pending)}")


def _announce(result: object) -> None:
    from courriel.bootstrap import InitResult

    assert isinstance(result, InitResult)
    if result.certificate_created:
        click.echo("Created a self-signed TLS certificate (set [tls] cert/key for a real one).")
    if result.admin_password:
        click.echo(
            f"Provider admin login: {result.admin_username}\n"
            f"Provider admin password: {result.admin_password}\n"
            "This password is shown only once: keep it now."
        )


@click.command()
def serve() -> None:
    """Start every service: web panel (HTTPS, port 10000) and the mail services."""
    from courriel.bootstrap import initialize
    from courriel.privileges import become, prepare_for, service_user
    from courriel.runtime import prebind, run

    cfg = get_config()
    user = service_user(cfg)
    if user is not None:  # root: what needs root, then never root again
        prepare_for(user, cfg)
        prebind(cfg)
        become(user, cfg)
        click.echo(f"Running as user {user.name}; data directory {cfg.data_dir}.")
    if cfg.general.mode == "edge":
        click.echo(
            "Edge mode: Postfix and Dovecot take mail and serve IMAP/POP3 here; Courriel "
            "listens on loopback for them only (LMTP, policy service, socketmap)."
        )
    result = initialize(cfg)
    _announce(result)
    run(cfg)


@click.command("smtp-worker", hidden=True)
def smtp_worker() -> None:
    """An extra process on port 25, started by `courriel serve` (see [smtp] workers)."""
    from courriel.bootstrap import setup_django
    from courriel.delivery.smtp.workers import run_worker

    setup_django()
    run_worker(get_config())


@click.group()
def config() -> None:
    """Show the configuration."""


@config.command("show")
@json_option
def config_show(as_json: bool) -> None:
    """Print the effective configuration (file, then COURRIEL_* variables); secrets masked."""
    cfg = get_config()
    shown = cfg.as_dict()
    if as_json:
        emit_json(shown)
        return
    click.echo(f"# file: {cfg.path or '(none, defaults only)'}")
    click.echo(f"# data directory: {cfg.data_dir}")
    for section, values in shown.items():
        click.echo(f"\n[{section}]")
        for key, value in values.items():
            note = "  # from environment" if (section, key) in cfg.overridden else ""
            click.echo(f"{key} = {_toml(value)}{note}")


@config.command("default")
def config_default() -> None:
    """Print the documented default configuration file."""
    click.echo(default_config_text(), nl=False)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
