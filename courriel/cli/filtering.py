"""`courriel filter domain|mailbox`: how incoming mail is judged for a domain (DMARC
failures) and a mailbox (spam thresholds)."""

from __future__ import annotations

import click

from courriel.cli.common import emit_json, facts, json_option, needs_db


def register(cli: click.Group) -> None:
    cli.add_command(filter_group)


@click.group("filter")
def filter_group() -> None:
    """Incoming mail checks: DMARC treatment per domain, spam thresholds per mailbox."""


def _score(value: float | None) -> str:
    return "rspamd's own action" if value is None else f"{value:g}"


@filter_group.command("domain")
@click.argument("domain")
@click.option(
    "--dmarc",
    type=click.Choice(["follow", "quarantine", "monitor"]),
    help="DMARC failures of mail to this domain: follow the sender's policy (refuse or "
    "Junk), quarantine (Junk, never refuse) or monitor (header only).",
)
@json_option
@needs_db
def filter_domain(domain: str, dmarc: str | None, as_json: bool) -> None:
    """Show or change how mail to DOMAIN is judged."""
    from courriel.accounts.permissions import Actor
    from courriel.inbound.services import domain_filtering, set_domain_dmarc

    actor = Actor.cli()
    out = (
        domain_filtering(actor, domain) if dmarc is None else set_domain_dmarc(actor, domain, dmarc)
    )
    if as_json:
        emit_json(out)
        return
    facts(
        [
            ("Domain", out.domain),
            ("Spam filtering", "on" if out.spam_filtering else "off (domain feature)"),
            ("DMARC failures", out.dmarc + ("" if out.dmarc_enforced else " (not enforced here)")),
        ]
    )


@filter_group.command("mailbox")
@click.argument("domain")
@click.argument("login")
@click.option("--junk-score", help="Spam score from which mail goes to Junk, or `default`.")
@click.option("--reject-score", help="Spam score from which mail is refused, or `default`.")
@json_option
@needs_db
def filter_mailbox(
    domain: str, login: str, junk_score: str | None, reject_score: str | None, as_json: bool
) -> None:
    """Show or change the spam thresholds of one mailbox."""
    from courriel.accounts.permissions import Actor
    from courriel.inbound.services import KEEP, mailbox_spam, set_mailbox_spam

    actor = Actor.cli()
    if junk_score is None and reject_score is None:
        out = mailbox_spam(actor, domain, login)
    else:
        out = set_mailbox_spam(
            actor,
            domain,
            login,
            junk_score=KEEP if junk_score is None else junk_score,
            reject_score=KEEP if reject_score is None else reject_score,
        )
    if as_json:
        emit_json(out)
        return
    facts(
        [
            ("Mailbox", f"{out.login} ({out.domain})"),
            ("Junk folder from score", _score(out.junk_score)),
            ("Refused from score", _score(out.reject_score)),
            ("Spam filtering", "on" if out.spam_filtering else "off (domain feature)"),
        ]
    )
