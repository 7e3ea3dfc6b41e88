"""`courriel greylist status|list|lookup|whitelist|purge|domain|mailbox`."""

from __future__ import annotations

from pathlib import Path

import click

from courriel.cli.common import (
    confirm,
    emit_json,
    facts,
    json_option,
    needs_db,
    table,
    yes_option,
)
from courriel.units import format_duration


def register(cli: click.Group) -> None:
    cli.add_command(greylist)


@click.group()
def greylist() -> None:
    """Greylisting: status, triplets, why mail was delayed, whitelists, switches."""


def _duration(seconds: int) -> str:
    from datetime import timedelta

    return format_duration(timedelta(seconds=seconds))


@greylist.command("status")
@json_option
@needs_db
def greylist_status(as_json: bool) -> None:
    """Settings and counts: deferred, passed after retry, auto-whitelisted, waiting."""
    from courriel.accounts.permissions import Actor
    from courriel.greylist.services import status

    out = status(Actor.cli())
    if as_json:
        emit_json(out)
        return
    facts(
        [
            ("Greylisting", "on" if out.enabled else "off"),
            (
                "Delay",
                f"{_duration(out.delay_seconds)} "
                f"(retry window {_duration(out.retry_window_seconds)}, "
                f"trusted triplets kept {_duration(out.expiry_seconds)} unseen)",
            ),
            (
                "Auto-whitelist",
                f"after {out.auto_whitelist_after} passes" if out.auto_whitelist_after else "off",
            ),
            ("If the store is down", "accept (fail-open)" if out.fail_open else "defer (4xx)"),
        ]
    )
    click.echo()
    periods = (out.today, out.last_7_days, out.total)
    labels = (
        ("Deferred", "deferred"),
        ("Passed after retry", "passed_retry"),
        ("Passed, trusted triplet", "passed_known"),
        ("Passed, whitelisted", "passed_whitelist"),
        ("Passed, auto-whitelisted", "passed_auto"),
        ("Store unavailable", "store_errors"),
    )
    table(
        ["Decisions", "Today", "7 days", "Total"],
        [[label, *(getattr(p, name) for p in periods)] for label, name in labels],
    )
    click.echo()
    facts(
        [
            ("Waiting for a retry", out.pending),
            ("Trusted triplets", out.trusted),
            ("Auto-whitelisted networks", out.auto_whitelisted),
            ("Whitelist entries", f"{out.whitelist_entries} (plus the shipped list)"),
            ("Domains with greylisting off", out.domains_off),
            ("Mailboxes with greylisting off", out.mailboxes_off),
        ]
    )


def _triplet_rows(rows: list) -> list[list[object]]:  # type: ignore[type-arg]
    return [
        [
            f"{t.first_seen:%Y-%m-%d %H:%M}",
            t.state,
            t.client_ip,
            t.sender,
            t.recipient,
            "-" if t.delayed_seconds is None else _duration(t.delayed_seconds),
        ]
        for t in rows
    ]


_TRIPLET_HEADERS = ["First seen (UTC)", "State", "Client", "Sender", "Recipient", "Delayed"]


@greylist.command("list")
@click.option(
    "--state",
    type=click.Choice(["all", "waiting", "trusted"]),
    default="all",
    show_default=True,
)
@click.option("--limit", default=50, show_default=True, help="How many triplets.")
@json_option
@needs_db
def greylist_list(state: str, limit: int, as_json: bool) -> None:
    """The most recently seen triplets."""
    from courriel.accounts.permissions import Actor
    from courriel.greylist.services import list_triplets

    rows = list_triplets(Actor.cli(), state=state, limit=limit)
    if as_json:
        emit_json(rows)
        return
    table(_TRIPLET_HEADERS, _triplet_rows(rows))


@greylist.command("lookup")
@click.option("--sender", help="The sender's address, e.g. alice@example.org.")
@click.option("--recipient", help="Our customer's address, or a domain for all of it.")
@click.option("--ip", "client_ip", help="The sending server's IP address.")
@click.option("--limit", default=50, show_default=True)
@json_option
@needs_db
def greylist_lookup(
    sender: str | None, recipient: str | None, client_ip: str | None, limit: int, as_json: bool
) -> None:
    """Why was mail delayed, and when will it arrive?"""
    from courriel.accounts.permissions import Actor
    from courriel.greylist.services import lookup

    out = lookup(Actor.cli(), sender=sender, recipient=recipient, client_ip=client_ip, limit=limit)
    if as_json:
        emit_json(out)
        return
    click.echo(out.summary)
    for line in out.exemptions:
        click.echo(f"- {line}")
    for triplet in out.triplets:
        click.echo()
        click.echo(f"{triplet.sender} -> {triplet.recipient} from {triplet.client_ip}")
        click.echo(f"  {triplet.state}: {triplet.explanation}")


@greylist.group("whitelist")
def whitelist() -> None:
    """Clients, senders and recipients never greylisted."""


KIND = click.Choice(["client", "sender", "recipient"])


@whitelist.command("list")
@click.option("--kind", type=KIND, help="Only this kind.")
@click.option("--no-default", is_flag=True, help="Hide the shipped list of large senders.")
@json_option
@needs_db
def whitelist_list(kind: str | None, no_default: bool, as_json: bool) -> None:
    """The whitelist entries (the shipped list's source is `default`)."""
    from courriel.accounts.permissions import Actor
    from courriel.greylist.services import list_whitelist

    rows = list_whitelist(Actor.cli(), kind=kind, include_default=not no_default)
    if as_json:
        emit_json(rows)
        return
    table(
        ["Kind", "Value", "Source", "Comment"],
        [[r.kind, r.value, r.source, r.comment] for r in rows],
    )


@whitelist.command("add")
@click.argument("kind", type=KIND)
@click.argument("value")
@click.option("--comment", default="", help="Why (shown in the list).")
@needs_db
def whitelist_add(kind: str, value: str, comment: str) -> None:
    """Add an entry: `client 192.0.2.0/24`, `client mail.example.org`, `client /regex/`,
    `sender example.org`, `recipient info@monsite.be`, `recipient postmaster@`."""
    from courriel.accounts.permissions import Actor
    from courriel.greylist.services import add_whitelist

    entry = add_whitelist(Actor.cli(), kind, value, comment)
    click.echo(f"Added {entry.value} to the {kind} whitelist.")


@whitelist.command("remove")
@click.argument("kind", type=KIND)
@click.argument("value")
@yes_option
@needs_db
def whitelist_remove(kind: str, value: str, yes: bool) -> None:
    """Remove an entry: that client, sender or recipient is greylisted again."""
    from courriel.accounts.permissions import Actor
    from courriel.greylist.services import remove_whitelist

    confirm(f"Remove {value} from the {kind} whitelist?", yes)
    remove_whitelist(Actor.cli(), kind, value)
    click.echo(f"Removed {value} from the {kind} whitelist.")


@whitelist.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--kind",
    type=KIND,
    help="client for whitelist_clients, recipient for whitelist_recipients "
    "(default: guessed from the file name).",
)
@json_option
@needs_db
def whitelist_import(file: Path, kind: str | None, as_json: bool) -> None:
    """Import a postgrey whitelist_clients or whitelist_recipients file."""
    from courriel.accounts.permissions import Actor
    from courriel.errors import NotFoundError, ValidationError
    from courriel.greylist.services import import_whitelist

    try:
        text = file.read_text("utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"No file {file}.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValidationError(f"Cannot read {file}: {error}.") from None
    if kind is None:
        kind = "recipient" if "recipient" in file.name else "client"
    out = import_whitelist(Actor.cli(), kind, text, file.name)
    if as_json:
        emit_json(out)
        return
    click.echo(
        f"Imported {out.added} {kind} entries from {file.name} "
        f"({out.already_present} already present)."
    )


@greylist.command("purge")
@click.option(
    "--all", "everything", is_flag=True, help="Forget every triplet and auto-whitelisted network."
)
@yes_option
@json_option
@needs_db
def greylist_purge(everything: bool, yes: bool, as_json: bool) -> None:
    """Delete expired triplets now (done hourly anyway), or everything with --all."""
    from courriel.accounts.permissions import Actor
    from courriel.greylist.services import purge

    if everything:
        confirm("Forget every triplet? All mail will be greylisted afresh.", yes)
    out = purge(Actor.cli(), everything=everything)
    if as_json:
        emit_json(out)
        return
    click.echo(f"Purged {out.triplets} triplets and {out.networks} client networks.")


@greylist.command("domain")
@click.argument("domain")
@click.option("--on/--off", "enabled", default=None, help="Turn greylisting on or off.")
@click.option("--delay", help="This domain's delay (e.g. 5m), or `default`.")
@json_option
@needs_db
def greylist_domain(domain: str, enabled: bool | None, delay: str | None, as_json: bool) -> None:
    """Show or change greylisting for one domain (and its domain aliases)."""
    from courriel.accounts.permissions import Actor
    from courriel.greylist.services import domain_greylisting, set_domain_greylisting

    actor = Actor.cli()
    if enabled is None and delay is None:
        out = domain_greylisting(actor, domain)
    else:
        changes: dict[str, object] = {}
        if enabled is not None:
            changes["enabled"] = enabled
        if delay is not None:
            changes["delay"] = None if delay.strip().lower() == "default" else delay
        out = set_domain_greylisting(actor, domain, **changes)  # type: ignore[arg-type]
    if as_json:
        emit_json(out)
        return
    facts(
        [
            ("Domain", out.domain),
            ("Greylisting", "on" if out.enabled else "off"),
            (
                "Delay",
                _duration(out.delay_seconds)
                + (" (this domain's own)" if out.delay_overridden else " (server default)"),
            ),
            ("Mailboxes with greylisting off", ", ".join(out.mailboxes_off) or "none"),
        ]
    )


@greylist.command("mailbox")
@click.argument("domain")
@click.argument("login")
@click.option("--on/--off", "enabled", default=None, help="Turn greylisting on or off.")
@json_option
@needs_db
def greylist_mailbox(domain: str, login: str, enabled: bool | None, as_json: bool) -> None:
    """Show or change greylisting for one mailbox."""
    from courriel.accounts.permissions import Actor
    from courriel.greylist.services import mailbox_greylisting, set_mailbox_greylisting

    actor = Actor.cli()
    if enabled is None:
        out = mailbox_greylisting(actor, domain, login)
    else:
        out = set_mailbox_greylisting(actor, domain, login, enabled=enabled)
    if as_json:
        emit_json(out)
        return
    state = "on" if out.enabled else "off"
    note = " (but off for the whole domain)" if out.enabled and not out.effective else ""
    click.echo(f"Greylisting for {out.login} ({out.domain}): {state}{note}.")
