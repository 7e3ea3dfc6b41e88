"""`courriel`: the command line that covers everything the panel does.

Named in the spirit of Virtualmin's `virtualmin create-user` family: a noun, then a
verb (`courriel user create`, `courriel domain list`). Errors are one line on stderr
with a non-zero exit code; a traceback is never shown unless COURRIEL_DEBUG=1.
"""

from __future__ import annotations

import logging
import os
import sys

import click

import courriel
from courriel.cli import (
    aliases,
    audit,
    backup,
    cluster,
    domains,
    edge,
    filtering,
    greylist,
    plans,
    queue,
    resolve,
    servers,
    stats,
    system,
    tls,
    tokens,
    users,
)
from courriel.errors import CourrielError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(courriel.__version__, prog_name="courriel")
def cli() -> None:
    """Courriel mail hosting platform: domains, mailboxes, aliases, mail services.

    Start everything with `courriel serve`. Every listing has --json.
    """


for module in (
    system,
    edge,
    servers,
    plans,
    domains,
    users,
    aliases,
    resolve,
    queue,
    audit,
    greylist,
    filtering,
    backup,
    stats,
    tokens,
    tls,
    cluster,
):
    module.register(cli)


def main(argv: list[str] | None = None) -> None:
    # Mail, keys and the database are private: whatever a command creates is the
    # service user's alone (0600 files, 0700 directories), parents of a Maildir too.
    # (Given back when a caller in the same process, a test, goes on afterwards.)
    umask = os.umask(0o077)
    try:
        _run(argv)
    finally:
        os.umask(umask)


def _run(argv: list[str] | None) -> None:
    debug = os.environ.get("COURRIEL_DEBUG") == "1"
    try:
        cli.main(args=argv, prog_name="courriel", standalone_mode=False)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except click.Abort:
        click.echo("Aborted: nothing was changed.", err=True)
        sys.exit(1)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except CourrielError as error:
        click.echo(f"courriel: {error.message}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as error:  # never a traceback for the user
        message = _database_message(error)
        if message:
            click.echo(f"courriel: {message}", err=True)
            sys.exit(75)
        if debug:
            logging.getLogger("courriel").exception("internal error")
        click.echo(
            f"courriel: internal error ({type(error).__name__}: {error}). Nothing was changed; "
            "run again with COURRIEL_DEBUG=1 for details and report it.",
            err=True,
        )
        sys.exit(70)


def _database_message(error: Exception) -> str | None:
    try:
        from django.db import DatabaseError, IntegrityError
    except ImportError:  # pragma: no cover
        return None
    if isinstance(error, IntegrityError):
        return (
            "the change conflicts with another one made at the same time "
            f"({error}); nothing was changed, try again."
        )
    if isinstance(error, DatabaseError):
        return f"the database is unavailable ({error}); nothing was changed, try again later."
    return None


if __name__ == "__main__":  # pragma: no cover
    main()
