"""`courriel backup ...`: snapshots, verification, restores and mailbox downloads (ch. 12)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import click

from courriel.cli.common import emit_json, json_option, needs_db, table
from courriel.units import format_size


def register(cli: click.Group) -> None:
    cli.add_command(backup)


@click.group()
def backup() -> None:
    """Snapshots of all mail and dumps of the database: run, list, verify, restore, download."""


class TerminalProgress:
    """A progress line on stderr, redrawn at most ten times a second; the expected file
    count is the previous snapshot's."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.last = 0.0

    def __call__(self, totals: Any, _rel: bytes) -> None:
        now = time.monotonic()
        if now - self.last < 0.1:
            return
        self.last = now
        width = 30
        if self.expected:
            done = min(totals.files / self.expected, 1.0)
            bar = "#" * int(done * width)
            head = f"[{bar.ljust(width)}] {done:4.0%}"
        else:
            head = "[scanning]"
        click.echo(
            f"\r{head} {totals.files:,} files, {format_size(totals.bytes_copied)} copied, "
            f"{format_size(totals.bytes_linked)} linked ",
            err=True,
            nl=False,
        )

    def close(self) -> None:
        if self.last:
            click.echo("", err=True)


@backup.command("run")
@json_option
@needs_db
def backup_run(as_json: bool) -> None:
    """Take a snapshot of every mailbox and a dump of the database now, then rotate."""
    from courriel.backup import store
    from courriel.backup.policy import load_policy
    from courriel.backup.runner import run_backup

    policy = load_policy()
    progress = None
    if sys.stderr.isatty() and not as_json:
        newest = store.snapshots(policy.directory)
        expected = max(newest, key=lambda s: s.taken_at).info["files"] if newest else 0
        progress = TerminalProgress(expected)
    # The summary is printed below; the log line would only repeat it on stderr.
    logging.getLogger("courriel.backup").setLevel(logging.WARNING)
    try:
        result = run_backup(policy, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    if as_json:
        emit_json(result.as_dict())
    else:
        click.echo(result.summary)


@backup.command("list")
@json_option
@needs_db
def backup_list(as_json: bool) -> None:
    """Snapshots (date, size, mailboxes), database dumps, and the last backup's result."""
    from courriel.accounts.permissions import Actor
    from courriel.backup.services import overview

    shown = overview(Actor.cli())
    if as_json:
        emit_json(shown)
        return
    last = shown["status"]
    if last:
        state = "OK" if last["ok"] else "FAILED"
        click.echo(f"Last backup: {last['finished_at']} {state}: {last['message']}")
    else:
        click.echo("Last backup: none yet.")
    click.echo(f"Directory: {shown['directory']}\n")
    table(
        ["Snapshot", "Date", "Mailboxes", "Files", "Size", "Added"],
        [
            (
                s["name"],
                s["taken_at"][:19].replace("T", " "),
                s["mailboxes"],
                f"{s['files']:,}",
                format_size(s["bytes"]),
                format_size(s["bytes_copied"]),
            )
            for s in shown["snapshots"]
        ],
    )
    if shown["database_dumps"]:
        click.echo("")
        table(
            ["Database dump", "Date", "Size"],
            [
                (d["name"], d["taken_at"][:19].replace("T", " "), format_size(d["size"]))
                for d in shown["database_dumps"]
            ],
        )
