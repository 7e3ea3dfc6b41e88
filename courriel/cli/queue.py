"""`courriel queue list|show|retry|delete` and `courriel status`."""

from __future__ import annotations

import time
from datetime import datetime

import click

import courriel
from courriel.cli.common import confirm, emit_json, facts, json_option, needs_db, table, yes_option


def register(cli: click.Group) -> None:
    cli.add_command(queue)
    cli.add_command(status)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)}s"
    if seconds < 7200:
        return f"{int(seconds // 60)}m"
    if seconds < 172800:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


@click.group()
def queue() -> None:
    """The outbound queue: mail waiting to be delivered to other servers."""


@queue.command("list")
@json_option
def queue_list(as_json: bool) -> None:
    """Entries waiting, with their recipients and last error."""
    from courriel.accounts.permissions import Actor
    from courriel.outbound.services import list_entries

    entries = list_entries(Actor.cli())
    if as_json:
        emit_json(
            [
                {
                    "id": e.id,
                    "kind": e.kind,
                    "sender": e.sender,
                    "created": e.created,
                    "attempts": e.attempts,
                    "next_attempt": e.next_attempt,
                    "size": e.size,
                    "recipients": [r.__dict__ for r in e.recipients],
                    "last_error": e.last_error,
                    "note": e.note,
                }
                for e in entries
            ]
        )
        return
    now = time.time()
    table(
        ["Id", "Age", "Kind", "Sender", "Waiting for", "Tries", "Next", "Last error"],
        [
            [
                e.id,
                _age(now - e.created),
                e.kind,
                e.sender or "<>",
                ", ".join(r.address for r in e.pending),
                e.attempts,
                "now" if e.next_attempt <= now else _age(e.next_attempt - now),
                e.last_error[:60],
            ]
            for e in entries
        ],
    )
    click.echo(f"\n{len(entries)} entries.")


@queue.command("show")
@click.argument("entry_id")
@json_option
def queue_show(entry_id: str, as_json: bool) -> None:
    """One entry: envelope, recipients and the message headers."""
    from courriel.accounts.permissions import Actor
    from courriel.outbound.services import show_entry

    shown = show_entry(Actor.cli(), entry_id)
    entry = shown.entry
    if as_json:
        emit_json(
            {
                "id": entry.id,
                "kind": entry.kind,
                "sender": entry.sender,
                "recipients": [r.__dict__ for r in entry.recipients],
                "attempts": entry.attempts,
                "note": entry.note,
            }
        )
        return
    facts(
        [
            ("Id", entry.id),
            ("Kind", entry.kind),
            ("Sender", entry.sender or "<>"),
            ("Queued", datetime.fromtimestamp(entry.created).isoformat(timespec="seconds")),
            ("Attempts", entry.attempts),
            ("Note", entry.note),
        ]
    )
    for recipient in entry.recipients:
        click.echo(f"  {recipient.address}: {recipient.status} {recipient.last_error}")
    click.echo("")
    click.echo(shown.headers)


@queue.command("retry")
@click.argument("entry_ids", nargs=-1)
@needs_db
def queue_retry(entry_ids: tuple[str, ...]) -> None:
    """Try entries again now (all of them when no id is given)."""
    from courriel.accounts.permissions import Actor
    from courriel.outbound.admin import running_pid
    from courriel.outbound.services import retry_entries

    count = retry_entries(Actor.cli(), list(entry_ids) or None)
    where = "the running server will try now" if running_pid() else "at the next `courriel serve`"
    click.echo(f"{count} entries due now ({where}).")


@queue.command("delete")
@click.argument("entry_ids", nargs=-1, required=True)
@yes_option
@needs_db
def queue_delete(entry_ids: tuple[str, ...], yes: bool) -> None:
    """Delete entries without delivering them (no bounce is sent)."""
    from courriel.accounts.permissions import Actor
    from courriel.outbound.services import delete_entries

    confirm(f"Delete {len(entry_ids)} queued message(s) without delivering them?", yes)
    click.echo(f"{delete_entries(Actor.cli(), list(entry_ids))} entries deleted.")


@click.command()
@click.option("--all", "every_server", is_flag=True, help="Every hosting server of the platform.")
@json_option
@needs_db
def status(every_server: bool, as_json: bool) -> None:
    """The platform at a glance: services, queue, accounts (--all: every hosting server)."""
    if every_server:
        _status_all(as_json)
        return
    from courriel.accounts.models import Alias, Domain, Mailbox
    from courriel.config import LISTENERS, get_config
    from courriel.outbound.admin import figures, running_pid

    config = get_config()
    queue_figures = figures()
    data = {
        "version": courriel.__version__,
        "data_dir": str(config.data_dir),
        "database": "postgresql" if config.database_url else "sqlite",
        "running_pid": running_pid(),
        "listeners": {
            name: f"{getattr(config, name).bind}:{getattr(config, name).port}"
            for name in LISTENERS
            if getattr(config, name).enabled
        },
        "queue": queue_figures.as_dict(),
        "domains": Domain.objects.count(),
        "mailboxes": Mailbox.objects.count(),
        "aliases": Alias.objects.count(),
    }
    if as_json:
        emit_json(data)
        return
    oldest = queue_figures.oldest_age_seconds
    facts(
        [
            ("Courriel version", data["version"]),
            ("Data directory", data["data_dir"]),
            ("Database", data["database"]),
            (
                "Server",
                f"running (pid {data['running_pid']})" if data["running_pid"] else "not running",
            ),
            ("Listeners", ", ".join(f"{k} {v}" for k, v in data["listeners"].items())),
            (
                "Queue",
                f"{queue_figures.entries} entries, {queue_figures.recipients_pending} "
                f"recipients waiting, {queue_figures.deferred} deferred"
                + (f", oldest {_age(oldest)}" if oldest else ""),
            ),
            ("Virtual servers", data["domains"]),
            ("Mailboxes", data["mailboxes"]),
            ("Aliases", data["aliases"]),
        ]
    )


def _status_all(as_json: bool) -> None:
    from courriel.cluster.status import platform_status, summary_line

    rows = platform_status(probe=True)
    if as_json:
        emit_json([row.as_dict() for row in rows])
        return
    table(
        [
            "Server",
            "Address",
            "State",
            "Seen",
            "Version",
            "Domains",
            "Services",
            "Queue, disk, backup",
        ],
        [
            [
                row.name + (" (this one)" if row.this else ""),
                row.address or "-",
                row.state + ("" if row.answers is not False else " (no answer)"),
                f"{row.seconds_since} s ago" if row.seconds_since is not None else "-",
                row.version or "-",
                row.domains,
                ", ".join(sorted(row.services)) or "-",
                summary_line(row) or "-",
            ]
            for row in rows
        ],
    )
