"""`courriel edge postfix|dovecot`: production mode's configuration for the peers."""

from __future__ import annotations

from pathlib import Path

import click

from courriel.config import get_config
from courriel.edge.postfix import Listen
from courriel.errors import ValidationError


def register(cli: click.Group) -> None:
    cli.add_command(edge)


@click.group()
def edge() -> None:
    """Configuration for Postfix and Dovecot in front of Courriel (production mode)."""


def _listen(text: str, default_port: int, what: str) -> Listen:
    try:
        return Listen.parse(text, default_port)
    except ValueError as error:
        raise ValidationError(f"{what}: {error}; write ADDRESS or ADDRESS:PORT") from None


@edge.command("postfix")
@click.option(
    "--config-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where to write main.cf and master.cf (e.g. /etc/postfix).",
)
@click.option("--listen", default="0.0.0.0:25", show_default=True, help="SMTP address:port.")
@click.option(
    "--submission",
    default="0.0.0.0:587",
    show_default=True,
    help="Submission address:port (users sign in, through Dovecot's auth service).",
)
@click.option("--no-submission", is_flag=True, help="No submission port on Postfix.")
@click.option(
    "--queue-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Postfix's queue (default /var/spool/postfix for /etc/postfix, else CONFIG-DIR-spool).",
)
@click.option(
    "--dovecot-auth",
    default="inet:127.0.0.1:12345",
    show_default=True,
    help="Dovecot's auth service for submission (as `courriel edge dovecot` writes it).",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Postfix's log file (default: syslog).",
)
def edge_postfix(
    config_dir: Path,
    listen: str,
    submission: str,
    no_submission: bool,
    queue_dir: Path | None,
    dovecot_auth: str,
    log_file: Path | None,
) -> None:
    """Write a complete Postfix configuration for this server: Postfix on port 25 (and
    587), recipients checked at RCPT against Courriel, greylisting through Courriel's
    policy service, mail delivered to Courriel's LMTP."""
    from courriel.edge.postfix import PostfixOptions, write

    config = get_config()
    config_dir = config_dir.resolve()
    system = config_dir == Path("/etc/postfix")
    queue = (
        queue_dir or (Path("/var/spool/postfix") if system else config_dir / "spool")
    ).resolve()
    data = Path("/var/lib/postfix") if system else config_dir / "data"
    options = PostfixOptions(
        config_dir=config_dir,
        queue_dir=queue,
        data_dir=data,
        smtp=_listen(listen, 25, "--listen"),
        submission=None if no_submission else _listen(submission, 587, "--submission"),
        dovecot_auth=dovecot_auth,
        log_file=log_file.resolve() if log_file else None,
    )
    for path in write(config, options):
        click.echo(f"wrote {path}")
    click.echo(
        f"Next: postfix -c {config_dir} check && postfix -c {config_dir} start; "
        'then set [general] mode = "edge" in Courriel\'s configuration and restart '
        "`courriel serve`."
    )
