"""`courriel plan list|show|create|modify|delete`: the account plans of chapter 4."""

from __future__ import annotations

from typing import Any

import click

from courriel.cli.common import (
    confirm,
    emit_json,
    facts,
    json_option,
    needs_db,
    parse_count,
    table,
    yes_option,
)
from courriel.units import format_size, parse_size


def register(cli: click.Group) -> None:
    cli.add_command(plan)


@click.group()
def plan() -> None:
    """Account plans (simple, recommended, large, and your own)."""


def _limit_options(func: Any) -> Any:
    options = [
        click.option("--web-quota", help="Web disk space, e.g. 10G or unlimited."),
        click.option("--mail-quota", help="Mail disk space for the whole customer, e.g. 30G."),
        click.option("--max-mailboxes", help="Mailboxes (the owner's own one not counted)."),
        click.option("--max-servers", help="Virtual servers, the domain itself included."),
        click.option("--max-domain-aliases", help="Domain aliases, or unlimited."),
        click.option("--default-mailbox-quota", help="Quota of a new mailbox, e.g. 3G."),
        click.option("--label", help="Name shown to customers."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _limits(options: dict[str, str | None]) -> dict[str, int | None]:
    values: dict[str, int | None] = {}
    for key in ("web_quota", "mail_quota", "default_mailbox_quota"):
        if options.get(key) is not None:
            values[key] = parse_size(options[key])
    for key in ("max_mailboxes", "max_servers", "max_domain_aliases"):
        if options.get(key) is not None:
            values[key] = parse_count(options[key])
    return values


def _count(value: int | None) -> str:
    return "Unlimited" if value is None else str(value)


@plan.command("list")
@json_option
@needs_db
def plan_list(as_json: bool) -> None:
    """List plans with their quotas and limits."""
    from courriel.accounts.models import Plan
    from courriel.accounts.schemas import PlanOut

    rows = [PlanOut.of(p) for p in Plan.objects.all()]
    if as_json:
        emit_json(rows)
        return
    table(
        [
            "Plan",
            "Web quota",
            "Mail quota",
            "Mailboxes",
            "Virtual servers",
            "Domain aliases",
            "Mailbox quota",
        ],
        [
            [
                p.name,
                format_size(p.web_quota),
                format_size(p.mail_quota),
                _count(p.max_mailboxes),
                _count(p.max_servers),
                _count(p.max_domain_aliases),
                format_size(p.default_mailbox_quota),
            ]
            for p in rows
        ],
    )


@plan.command("show")
@click.argument("name")
@json_option
@needs_db
def plan_show(name: str, as_json: bool) -> None:
    """Show one plan."""
    from courriel.accounts.schemas import PlanOut
    from courriel.accounts.services.plans import get_plan

    shown = PlanOut.of(get_plan(name))
    if as_json:
        emit_json(shown)
        return
    facts(
        [
            ("Plan", f"{shown.name} ({shown.label})"),
            ("Web quota", format_size(shown.web_quota)),
            ("Mail quota", format_size(shown.mail_quota)),
            ("Mailboxes", _count(shown.max_mailboxes)),
            ("Virtual servers", _count(shown.max_servers)),
            ("Domain aliases", _count(shown.max_domain_aliases)),
            ("Default mailbox quota", format_size(shown.default_mailbox_quota)),
        ]
    )


@plan.command("create")
@click.argument("name")
@_limit_options
@needs_db
def plan_create(name: str, label: str | None, **options: str | None) -> None:
    """Create a plan; limits not given are unlimited."""
    from courriel.accounts.permissions import Actor
    from courriel.accounts.services.plans import create_plan

    created = create_plan(Actor.cli(), name, label=label or "", **_limits(options))
    click.echo(f"Plan {created.name} created.")


@plan.command("modify")
@click.argument("name")
@_limit_options
@needs_db
def plan_modify(name: str, label: str | None, **options: str | None) -> None:
    """Change a plan's quotas and limits (refused if a domain would no longer fit)."""
    from courriel.accounts.permissions import Actor
    from courriel.accounts.services.plans import get_plan, modify_plan

    limits = _limits(options)
    if not limits and label is None:
        raise click.UsageError("Nothing to change: give at least one option.")
    modify_plan(Actor.cli(), get_plan(name), label=label, **limits)
    click.echo(f"Plan {name} changed.")


@plan.command("delete")
@click.argument("name")
@yes_option
@needs_db
def plan_delete(name: str, yes: bool) -> None:
    """Delete a plan no domain uses."""
    from courriel.accounts.permissions import Actor
    from courriel.accounts.services.plans import delete_plan, get_plan

    target = get_plan(name)
    confirm(f"Delete plan {target.name}?", yes)
    delete_plan(Actor.cli(), target)
    click.echo(f"Plan {name} deleted.")
