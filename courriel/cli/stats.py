"""`courriel stats show|sample`: the Statistics page's figures on the command line."""

from __future__ import annotations

import click

from courriel.cli.common import emit_json, json_option, needs_db, table


def register(cli: click.Group) -> None:
    cli.add_command(stats)


@click.group()
def stats() -> None:
    """Statistics: messages received, delivered, forwarded, refused, greylisted, sent."""


@stats.command("show")
@click.option("--domain", default="", help="Only this domain (disk use per mailbox).")
@json_option
@needs_db
def stats_show(domain: str, as_json: bool) -> None:
    """The last 48 hours and 90 days; --json has every hour, day and disk figure."""
    from courriel.accounts.permissions import Actor
    from courriel.stats.counters import METRICS
    from courriel.stats.figures import statistics
    from courriel.stats.schemas import StatisticsOut

    figures = statistics(Actor.cli(), domain.strip() or None)
    if as_json:
        emit_json(StatisticsOut.of(figures))
        return
    hours, days = figures.totals("hour"), figures.totals("day")
    table(
        ["Messages", "Last 48 hours", "Last 90 days"],
        [[metric, hours[metric], days[metric]] for metric in METRICS],
    )
    if figures.refused_90d:
        click.echo("")
        table(
            ["Refused because", "Last 48 hours", "Last 90 days"],
            [
                [reason, figures.refused_48h.get(reason, 0), n]
                for reason, n in figures.refused_90d.items()
            ],
        )
    if figures.queue_now is not None:
        click.echo(f"\nWaiting in the outbound queue now: {figures.queue_now}")


@stats.command("sample")
@needs_db
def stats_sample() -> None:
    """Record every mailbox's disk use and the queue's size now (`courriel serve` does
    it every day and every few minutes)."""
    from courriel.stats.service import sample_disk_usage, sample_queue

    mailboxes = sample_disk_usage()
    size = sample_queue()
    click.echo(f"Disk use of {mailboxes} mailboxes recorded; {size} messages in the queue.")
