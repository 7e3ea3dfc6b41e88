"""`courriel tls status|renew`: the certificates ACME keeps for this server."""

from __future__ import annotations

import os
import signal

import click

from courriel.cli.common import emit_json, json_option, needs_db, table
from courriel.config import get_config
from courriel.errors import ConfigError, ServiceUnavailableError


def register(cli: click.Group) -> None:
    cli.add_command(tls)


@click.group()
def tls() -> None:
    """TLS certificates (ACME: [tls] acme_directory)."""


@tls.command("status")
@json_option
@needs_db
def tls_status(as_json: bool) -> None:
    """Certificates held, their names and expiry, and the last renewal round."""
    from courriel.acme import store
    from courriel.acme.service import certificates

    config = get_config()
    shown = {
        "acme_directory": config.tls.acme_directory,
        "certificates": certificates(config),
        "last_round": store.read_status(config),
    }
    if as_json:
        emit_json(shown)
        return
    if not config.tls.acme_directory:
        click.echo("ACME is off ([tls] acme_directory is empty): the [tls] certificate serves.")
    table(
        ["certificate", "names", "expires"],
        [[c["name"], ", ".join(c["names"]), c["expires"] or "?"] for c in shown["certificates"]],
    )
    for failure in shown["last_round"].get("failures", []):
        click.echo(f"failed: {', '.join(failure['names'])}: {failure['error']}", err=True)


@tls.command("renew")
@click.option("--force", is_flag=True, help="Ask for new certificates even if none is due.")
@json_option
@needs_db
def tls_renew(force: bool, as_json: bool) -> None:
    """Ask the CA now for what is due; the running server serves the result at once."""
    from courriel.acme.service import run_round
    from courriel.outbound.admin import running_pid

    config = get_config()
    if not config.tls.acme_directory:
        raise ConfigError("[tls] acme_directory is empty: set the ACME CA's directory URL.")
    pid = running_pid()
    if pid is None:
        raise ServiceUnavailableError(
            "`courriel serve` is not running: it answers the CA's challenges (HTTP-01 on "
            "port 80, or TLS-ALPN-01 on the panel's port). Start it, then try again."
        )
    status = run_round(config, force=force)
    if status["issued"]:
        os.kill(pid, signal.SIGHUP)  # every process of the server reads them now
    if as_json:
        emit_json(status)
    else:
        for names in status["issued"]:
            click.echo(f"issued: {', '.join(names)}")
        for failure in status["failures"]:
            click.echo(f"failed: {', '.join(failure['names'])}: {failure['error']}", err=True)
        if not status["issued"] and not status["failures"]:
            click.echo("Nothing due.")
    if status["failures"]:
        raise ServiceUnavailableError("some certificates could not be obtained (see above)")
