"""`courriel backup ...`: snapshots, verification, restores and mailbox downloads (ch. 12)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import click

from courriel.cli.common import confirm, emit_json, json_option, needs_db, table, yes_option
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
def backup_run(as_json: bool) -> None:
    """Take a snapshot of every mailbox and a dump of the database now, then rotate.

    Runs without setting up the web framework (it reads the database settings only),
    so that a backup starts at once."""
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
@click.option(
    "--domain",
    help="Only the snapshots holding this domain's mail, from the hosting server that holds it.",
)
@json_option
@needs_db
def backup_list(domain: str | None, as_json: bool) -> None:
    """Snapshots (date, size, mailboxes), database dumps, and the last backup's result."""
    from courriel.accounts.permissions import Actor, get_domain
    from courriel.backup.services import list_snapshots, overview

    actor = Actor.cli()
    if domain is not None:
        found = list_snapshots(actor, get_domain(actor, domain))
        if as_json:
            emit_json(found)
            return
        _snapshot_table(found)
        return
    shown = overview(actor)
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
    _snapshot_table(shown["snapshots"])
    if shown["database_dumps"]:
        click.echo("")
        table(
            ["Database dump", "Date", "Size"],
            [
                (d["name"], d["taken_at"][:19].replace("T", " "), format_size(d["size"]))
                for d in shown["database_dumps"]
            ],
        )


def _snapshot_table(snapshots: list[dict]) -> None:
    table(
        ["Snapshot", "Date", "Mailboxes", "Files", "Size", "Added"],
        [
            (
                s["name"],
                s["taken_at"][:19].replace("T", " "),
                s["mailboxes"],
                f"{s['files']:,}",
                format_size(s["bytes"]),
                format_size(s.get("bytes_copied", 0)),
            )
            for s in snapshots
        ],
    )


@backup.command("verify")
@click.argument("snapshot", required=False)
@json_option
@needs_db
def backup_verify(snapshot: str | None, as_json: bool) -> None:
    """Restore SNAPSHOT (default: the newest) into a scratch place and check every file
    against its manifest, and its database dump by restoring it."""
    from courriel.backup.verify import verify
    from courriel.errors import ValidationError

    report = verify(snapshot)
    if as_json:
        emit_json(report.as_dict())
    else:
        click.echo(
            f"{report.snapshot} ({report.taken_at[:19].replace('T', ' ')}): {report.files:,} "
            f"files, {format_size(report.bytes)} restored and checked."
        )
        for item in report.damaged:
            click.echo(f"  DAMAGED {item['path']}: {item['problem']}")
        for path in report.unexpected:
            click.echo(f"  not in the manifest: {path}")
        click.echo(f"Database: {report.database}")
    if not report.ok:
        what = f"{len(report.damaged)} damaged files" if report.damaged else "the database dump"
        raise ValidationError(
            f"{report.snapshot} does not restore cleanly ({what}). Damaged files will be "
            "copied afresh by the next `courriel backup run`; restore them from another "
            "snapshot if they are no longer in the live mailbox."
        )
    if not as_json:
        click.echo("OK: the snapshot restores completely.")


@backup.command("restore")
@click.argument("domain", required=False)
@click.option("--user", "--mailbox", "login", help="Only this mailbox (login).")
@click.option("--folder", help="Only this folder (INBOX, Sent, Archive/2024...).")
@click.option("--message", help="Only this message: its Message-ID or its file name.")
@click.option("--snapshot", help="daily.0 (default: newest), weekly.2, an id or a date.")
@click.option("--in-place", is_flag=True, help="Back into the original folders.")
@click.option("--database", "restore_db", is_flag=True, help="Restore the database dump instead.")
@click.option("--dump", help="With --database: the dump name (default: newest).")
@yes_option
@json_option
@needs_db
def backup_restore(
    domain: str | None,
    login: str | None,
    folder: str | None,
    message: str | None,
    snapshot: str | None,
    in_place: bool,
    restore_db: bool,
    dump: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Restore mail of DOMAIN (whole, --user, --folder or --message) from a snapshot into
    the live mailboxes without overwriting anything: into a folder "Restored YYYY-MM-DD"
    unless --in-place. With --database: replace the live database by a dump."""
    from courriel.accounts.permissions import Actor
    from courriel.backup import services

    actor = Actor.cli()
    if restore_db:
        chosen = services.find_dump(actor, dump or snapshot)
        confirm(
            f"Replace the live database by the dump {chosen.name} taken "
            f"{chosen.info['taken_at'][:19]}? Changes made since then are lost (the "
            "current database is dumped first).",
            yes,
        )
        safety = services.restore_database(actor, chosen)
        click.echo(f"Database restored from {chosen.name}; the previous one was saved as {safety}.")
        return
    if not domain:
        raise click.UsageError("Give the DOMAIN to restore (or --database).")
    from courriel.backup.restore import RestoreIncomplete

    try:
        report = services.restore(
            actor,
            domain,
            login=login,
            folder=folder,
            message=message,
            snapshot=snapshot,
            in_place=in_place,
        )
    except RestoreIncomplete as error:
        _show_restore(error.report, as_json)
        raise
    _show_restore(report, as_json)


def _show_restore(report: Any, as_json: bool) -> None:
    if as_json:
        emit_json(report.as_dict())
        return
    where = f'into "{report.folder}"' if report.folder else "in place"
    click.echo(
        f"Restored {len(report.restored)} messages ({format_size(report.bytes)}) from "
        f"{report.snapshot} {where}."
    )
    if report.already_present:
        click.echo(f"{report.already_present} messages were already there: skipped.")
    for login in report.missing_mailboxes:
        click.echo(f"Mailbox {login} is not in this snapshot: nothing to restore for it.")


@backup.command("download")
@click.argument("domain")
@click.argument("login")
@click.option(
    "--format", "fmt", type=click.Choice(["mbox", "maildir"]), default="mbox", show_default=True
)
@click.option("--folder", help="mbox of this folder only (default: every folder).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="File (default: stdout).")
@needs_db
def backup_download(
    domain: str, login: str, fmt: str, folder: str | None, output: str | None
) -> None:
    """Write a mailbox as an mbox file or a Maildir .tar.gz (what the panel streams)."""
    from courriel.accounts.permissions import Actor
    from courriel.backup.download import open_download

    download = open_download(Actor.cli(), login, fmt, domain=domain, folder=folder)
    if output is None:
        stream = click.get_binary_stream("stdout")
        for chunk in download.chunks:
            stream.write(chunk)
        stream.flush()
        return
    with open(output, "wb") as handle:
        for chunk in download.chunks:
            handle.write(chunk)
    click.echo(f"Wrote {output}.", err=True)
