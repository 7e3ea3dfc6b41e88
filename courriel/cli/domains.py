"""`courriel domain ...` (virtual servers, chapters 1, 3 and 5) and
`courriel domain-alias ...`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from courriel.cli.common import confirm, emit_json, facts, json_option, needs_db, table, yes_option
from courriel.units import format_size

if TYPE_CHECKING:
    from courriel.accounts.schemas import VerificationOut


def register(cli: click.Group) -> None:
    cli.add_command(domain)
    cli.add_command(domain_alias)


@click.group()
def domain() -> None:
    """Virtual servers: customers' mail domains and their sub-servers."""


def _features(text: str | None) -> list[str] | None:
    return None if text is None else [f for f in text.replace(",", " ").split() if f]


@domain.command("create")
@click.argument("name")
@click.option("--plan", help="Plan of a customer domain (simple, recommended, large...).")
@click.option("--server", help="Hosting server name (default: this one, or the least used).")
@click.option("--parent", help="Create a sub-server of this domain (shares its plan).")
@click.option("--contact", "contact_email", default="", help="Customer's contact e-mail.")
@click.option("--desc", "--description", "description", default="", help="Description.")
@click.option("--owner-login", help="Administration login (default: the domain's first label).")
@click.option("--owner-name", "real_name", default="", help="Real name of the owner's mailbox.")
@click.option("--pass", "--password", "password", help="Owner password (default: generated).")
@click.option("--features", help="Enabled features, e.g. 'mail dns spam'.")
@click.option("--ip", "ip_address", help="IP address (default: the hosting server's).")
@json_option
@needs_db
def domain_create(
    name: str,
    plan: str | None,
    server: str | None,
    parent: str | None,
    contact_email: str,
    description: str,
    owner_login: str | None,
    real_name: str,
    password: str | None,
    features: str | None,
    ip_address: str | None,
    as_json: bool,
) -> None:
    """Create a customer's mail domain on a plan, or a sub-server with --parent.

    The owner's login and a strong password are generated and shown once, with
    abuse@, hostmaster@, postmaster@ and webmaster@ pointing to the owner.
    """
    from courriel.accounts.permissions import Actor, get_domain
    from courriel.accounts.services.domains import create_domain
    from courriel.accounts.setup_summary import setup_facts

    actor = Actor.cli()
    created = create_domain(
        actor,
        name,
        plan=plan,
        server=server,
        parent=get_domain(actor, parent) if parent else None,
        owner_login=owner_login,
        password=password,
        real_name=real_name,
        description=description,
        contact_email=contact_email,
        features=_features(features),
        ip_address=ip_address,
    )
    summary = setup_facts(created.domain, created.password)
    if as_json:
        emit_json(
            {
                "domain": created.domain.name,
                "owner": created.owner.login if created.owner else None,
                "password": created.password,
                "parent": parent,
                "setup": dict(summary),
            }
        )
        return
    if parent:
        click.echo(f"Sub-server {created.domain.display_name} created under {parent}.")
        return
    click.echo("The following mail domain has been set up successfully:")
    facts(summary)
    if created.password:
        click.echo("\nThe administration password is shown only this once.")


@domain.command("list")
@click.option("--search", default="", help="Only domains whose name contains this text.")
@json_option
@needs_db
def domain_list(search: str, as_json: bool) -> None:
    """List virtual servers."""
    from courriel.accounts.permissions import Actor
    from courriel.accounts.schemas import DomainOut
    from courriel.accounts.services.domains import list_domains

    rows = [DomainOut.of(d) for d in list_domains(Actor.cli(), search)]
    if as_json:
        emit_json(rows)
        return
    table(
        ["Domain", "Owner", "Plan", "Server", "Parent", "Status", "Description"],
        [
            [
                r.display_name,
                r.owner or "-",
                r.plan,
                r.server,
                r.parent or "",
                "verified" if r.verified else "pending",
                r.description,
            ]
            for r in rows
        ],
    )


@domain.command("show")
@click.argument("name")
@json_option
@needs_db
def domain_show(name: str, as_json: bool) -> None:
    """Virtual server details (chapter 5) and its usage (chapter 3)."""
    from courriel.accounts.permissions import Actor, get_domain
    from courriel.accounts.schemas import DomainOut, UsageOut
    from courriel.accounts.services.limits import disk_usage, usage

    target = get_domain(Actor.cli(), name)
    used = UsageOut.of(usage(target), disk_usage(target))
    shown = DomainOut.of(target, used, with_aliases=True)
    if as_json:
        emit_json(shown)
        return
    limit = lambda value: "Unlimited" if value is None else value  # noqa: E731
    facts(
        [
            ("Domain name", shown.display_name),
            ("Administration group", shown.admin_group),
            ("Created on", f"{shown.created_on:%d/%b/%Y %H:%M} by {shown.created_by}"),
            ("Account plan", shown.plan),
            ("Parent server", shown.parent or "-"),
            ("Hosting server", shown.server),
            ("IP address", shown.ip_address or "-"),
            ("Home directory", shown.home_directory),
            ("Description", shown.description),
            ("Contact email", shown.contact_email),
            ("Enabled features", ", ".join(shown.features)),
            ("Domain aliases", ", ".join(shown.domain_aliases or []) or "-"),
            ("Control of the name", _verification_text(shown.verification)),
            ("Sub-servers", f"{used.servers} out of {limit(used.max_servers)}"),
            ("Mailboxes", f"{used.mailboxes} out of {limit(used.max_mailboxes)}"),
            ("Mail aliases", used.aliases),
            (
                "Disk usage and quota",
                f"{format_size(used.disk_used or 0)} out of {format_size(used.mail_quota)}",
            ),
            ("Web quota", format_size(used.web_quota)),
        ]
    )


def _verification_text(verification: VerificationOut | None) -> str:
    if verification is None:
        return "verified"
    return (
        f'pending: publish TXT {verification.record} "{verification.value}", '
        "then `courriel domain verify`"
    )


@domain.command("verify")
@click.argument("name")
@needs_db
def domain_verify(name: str) -> None:
    """Check the DNS TXT record that proves control of a pending domain or domain
    alias; once found, the name takes mail."""
    from courriel.accounts.permissions import Actor
    from courriel.accounts.services.ownership import verify

    found = verify(Actor.cli(), name)
    click.echo(f"{found.name} is verified ({found.verified_by}): it takes mail.")


@domain.command("approve")
@click.argument("name")
@needs_db
def domain_approve(name: str) -> None:
    """Vouch for a pending domain or domain alias without its DNS record."""
    from courriel.accounts.permissions import Actor
    from courriel.accounts.services.ownership import approve

    found = approve(Actor.cli(), name)
    click.echo(f"{found.name} is approved: it takes mail.")


@domain.command("modify")
@click.argument("name")
@click.option("--plan")
@click.option("--server")
@click.option("--desc", "--description", "description")
@click.option("--contact", "contact_email")
@click.option("--features")
@click.option("--ip", "ip_address")
@click.option("--admin-group")
@click.option(
    "--require-2fa/--no-require-2fa",
    "require_2fa",
    default=None,
    help="Whether the owner must use two-factor sign-in in the panel.",
)
@needs_db
def domain_modify(
    name: str, features: str | None, require_2fa: bool | None, **options: str | None
) -> None:
    """Change a virtual server (plan, server, description, contact...)."""
    from courriel.accounts.permissions import Actor, get_domain
    from courriel.accounts.services.domains import modify_domain

    changes: dict[str, object] = {k: v for k, v in options.items() if v is not None}
    if features is not None:
        changes["features"] = _features(features)
    if require_2fa is not None:
        changes["require_2fa"] = require_2fa
    if not changes:
        raise click.UsageError("Nothing to change: give at least one option.")
    actor = Actor.cli()
    modify_domain(actor, get_domain(actor, name), **changes)
    click.echo(f"Virtual server {name} changed.")


@domain.command("delete")
@click.argument("name")
@yes_option
@needs_db
def domain_delete(name: str, yes: bool) -> None:
    """Delete a virtual server with its sub-servers, mailboxes and aliases."""
    from courriel.accounts.permissions import Actor, get_domain
    from courriel.accounts.services.domains import delete_domain

    actor = Actor.cli()
    target = get_domain(actor, name)
    subs = target.subservers.count()
    mailboxes = target.mailboxes.count()
    extra = f" and its {subs} sub-servers" if subs else ""
    confirm(
        f"Delete {target.display_name}{extra} with {mailboxes} mailboxes? Their mail is "
        "moved to the data directory's 'deleted' folder.",
        yes,
    )
    deleted = delete_domain(actor, target)
    click.echo("Deleted: " + ", ".join(deleted))


@domain.command("dns")
@click.argument("name")
@json_option
@needs_db
def domain_dns(name: str, as_json: bool) -> None:
    """DNS records to publish for a domain: MX, SPF, DKIM and DMARC."""
    from courriel.accounts.permissions import Actor, get_domain
    from courriel.accounts.services.dns import dns_records

    records = dns_records(get_domain(Actor.cli(), name))
    if as_json:
        emit_json([record.as_dict() for record in records])
        return
    for record in records:
        click.echo(f"; {record.purpose}")
        click.echo(record.zone_line())


@click.group("domain-alias")
def domain_alias() -> None:
    """Domain aliases: other names whose mail goes to the same addresses."""


@domain_alias.command("add")
@click.argument("domain_name", metavar="DOMAIN")
@click.argument("alias")
@needs_db
def domain_alias_add(domain_name: str, alias: str) -> None:
    """Make ALIAS (e.g. monsite.eu) receive the mail of DOMAIN's addresses."""
    from courriel.accounts.permissions import Actor, get_domain
    from courriel.accounts.services.domains import add_domain_alias

    actor = Actor.cli()
    created = add_domain_alias(actor, get_domain(actor, domain_name), alias)
    click.echo(f"{created} is now an alias of {domain_name}.")


@domain_alias.command("list")
@click.argument("domain_name", metavar="DOMAIN")
@json_option
@needs_db
def domain_alias_list(domain_name: str, as_json: bool) -> None:
    """List the domain aliases of DOMAIN."""
    from courriel.accounts.permissions import Actor, get_domain
    from courriel.accounts.schemas import DomainAliasOut
    from courriel.accounts.services.domains import list_domain_aliases

    actor = Actor.cli()
    rows = [
        DomainAliasOut.of(a) for a in list_domain_aliases(actor, get_domain(actor, domain_name))
    ]
    if as_json:
        emit_json(rows)
        return
    table(["Alias", "Domain"], [[r.name, r.domain] for r in rows])


@domain_alias.command("delete")
@click.argument("domain_name", metavar="DOMAIN")
@click.argument("alias")
@yes_option
@needs_db
def domain_alias_delete(domain_name: str, alias: str, yes: bool) -> None:
    """Stop receiving mail for ALIAS."""
    from courriel.accounts.permissions import Actor, get_domain
    from courriel.accounts.services.domains import delete_domain_alias

    actor = Actor.cli()
    target = get_domain(actor, domain_name)
    confirm(f"Stop receiving mail for {alias}?", yes)
    delete_domain_alias(actor, target, alias)
    click.echo(f"{alias} is no longer an alias of {domain_name}.")
