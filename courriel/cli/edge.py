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
    # Beside a private configuration directory, never inside it (`postfix check` wants
    # the configuration directory root's alone).
    default_queue = Path("/var/spool/postfix") if system else Path(f"{config_dir}-spool")
    queue = (queue_dir or default_queue).resolve()
    data = Path("/var/lib/postfix") if system else Path(f"{config_dir}-data")
    options = PostfixOptions(
        config_dir=config_dir,
        queue_dir=queue,
        data_dir=data,
        smtp=_listen(listen, 25, "--listen"),
        submission=None if no_submission else _listen(submission, 587, "--submission"),
        dovecot_auth=dovecot_auth,
        relay=Listen(config.relay.bind, int(config.relay.port)),
        log_file=log_file.resolve() if log_file else None,
    )
    for path in write(config, options):
        click.echo(f"wrote {path}")
    click.echo(
        f"Next: postfix -c {config_dir} check && postfix -c {config_dir} start; "
        'then set [general] mode = "edge" in Courriel\'s configuration and restart '
        "`courriel serve`."
    )


@edge.command("dovecot")
@click.option(
    "--config-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where to write dovecot.conf and dovecot-sql.conf.ext (e.g. /etc/dovecot).",
)
@click.option("--imap", default="0.0.0.0:143", show_default=True, help="IMAP address:port.")
@click.option("--imaps", default="0.0.0.0:993", show_default=True, help="IMAPS address:port.")
@click.option("--pop3", default="0.0.0.0:110", show_default=True, help="POP3 address:port.")
@click.option("--pop3s", default="0.0.0.0:995", show_default=True, help="POP3S address:port.")
@click.option("--no-pop3", is_flag=True, help="IMAP only.")
@click.option(
    "--auth",
    default="127.0.0.1:12345",
    show_default=True,
    help="Dovecot's auth service for Postfix's submission (SASL).",
)
@click.option(
    "--base-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Dovecot's runtime directory (default /run/dovecot, or CONFIG-DIR-run).",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Dovecot's log file (default: syslog).",
)
def edge_dovecot(
    config_dir: Path,
    imap: str,
    imaps: str,
    pop3: str,
    pop3s: str,
    no_pop3: bool,
    auth: str,
    base_dir: Path | None,
    log_file: Path | None,
) -> None:
    """Write a complete Dovecot configuration serving Courriel's Maildirs over IMAP and
    POP3 with the passwords of Courriel's database."""
    from courriel.edge.dovecot import DovecotOptions, write

    config = get_config()
    config_dir = config_dir.resolve()
    system = config_dir == Path("/etc/dovecot")
    default_base = Path("/run/dovecot") if system else Path(f"{config_dir}-run")
    options = DovecotOptions(
        config_dir=config_dir,
        base_dir=(base_dir or default_base).resolve(),
        imap=_listen(imap, 143, "--imap"),
        imaps=_listen(imaps, 993, "--imaps"),
        pop3=None if no_pop3 else _listen(pop3, 110, "--pop3"),
        pop3s=None if no_pop3 else _listen(pop3s, 995, "--pop3s"),
        auth=_listen(auth, 12345, "--auth"),
        log_file=log_file.resolve() if log_file else None,
    )
    for path in write(config, options):
        click.echo(f"wrote {path}")
    click.echo(
        f"Next: doveconf -c {config_dir}/dovecot.conf -n && dovecot -c {config_dir}/dovecot.conf"
    )
