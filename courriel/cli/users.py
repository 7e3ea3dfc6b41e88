"""`courriel user ...`: mailboxes (chapters 6 to 9 and 11).

Virtualmin's flag names work too: --user, --real, --pass, --quota, --extra.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from courriel.cli.common import (
    confirm,
    domain_argument,
    emit_json,
    facts,
    json_option,
    needs_db,
    read_password_twice,
    table,
    yes_option,
)
from courriel.units import format_duration, format_size, parse_date, parse_duration, parse_size


def register(cli: click.Group) -> None:
    cli.add_command(user)


@click.group()
def user() -> None:
    """Mailboxes: create, list, show, modify, delete, password, forward, autoreply, import,
    send-account-mail."""


def _context(domain_name: str) -> tuple[Any, Any]:
    from courriel.accounts.permissions import Actor, get_domain

    actor = Actor.cli()
    return actor, get_domain(actor, domain_name)


def _mailbox(domain_name: str, login: str) -> tuple[Any, Any]:
    from courriel.accounts.permissions import get_mailbox

    actor, domain = _context(domain_name)
    return actor, get_mailbox(actor, login, domain)


def _login_access(mailbox: Any) -> str:
    return "Disabled" if mailbox.login_disabled else "Email only"


@user.command("create")
@domain_argument
@click.option("--login", "--user", "login", help="Login (default: prefix + 0001, 0002...).")
@click.option("--real-name", "--real", "real_name", default="", help="Real name, e.g. Info.")
@click.option("--password", "--pass", "password", help="Password.")
@click.option("--generate-password", is_flag=True, help="Generate a strong password, shown once.")
@click.option("--quota", help="Home directory quota: 3G, 1024M or unlimited (default: plan's).")
@click.option(
    "--address",
    "--extra",
    "addresses",
    multiple=True,
    help="Additional address (repeatable), e.g. info@monsite.be.",
)
@click.option("--email", "primary", help="Primary address name if not the login, e.g. info.")
@click.option("--primary-disabled", is_flag=True, help="Primary address does not receive mail.")
@click.option("--disabled", is_flag=True, help="Login temporarily disabled.")
@click.option("--forward", "forwards", multiple=True, help="Forward to this address (repeatable).")
@click.option("--no-keep", is_flag=True, help="With --forward: do not keep a copy.")
@click.option(
    "--send-account-mail",
    "send_to",
    metavar="mailbox|ADDRESS",
    help="E-mail the account's settings to the new mailbox or to an address.",
)
@json_option
@needs_db
def user_create(
    domain: str,
    login: str | None,
    real_name: str,
    password: str | None,
    generate_password: bool,
    quota: str | None,
    addresses: tuple[str, ...],
    primary: str | None,
    primary_disabled: bool,
    disabled: bool,
    forwards: tuple[str, ...],
    no_keep: bool,
    send_to: str | None,
    as_json: bool,
) -> None:
    """Add a mailbox to DOMAIN ("Add a user to this server")."""
    from courriel.accounts.schemas import MailboxOut
    from courriel.accounts.services.limits import usage
    from courriel.accounts.services.mailboxes import UNSET, create_mailbox

    actor, target = _context(domain)
    if password is None and not generate_password:
        raise click.UsageError("Give --password (or --pass), or --generate-password.")
    created = create_mailbox(
        actor,
        target,
        login=login,
        real_name=real_name,
        password=password,
        generate_password=generate_password,
        quota=UNSET if quota is None else parse_size(quota),
        addresses=addresses,
        primary_local_part=primary,
        primary_enabled=not primary_disabled,
        disabled=disabled,
        forward_to=forwards,
        deliver_normally=not no_keep,
        send_account_mail_to=send_to,
    )
    shown = MailboxOut.of(created.mailbox)
    left = usage(target).additional_mailboxes
    if as_json:
        emit_json({"mailbox": shown, "password": created.password, "additional_mailboxes": left})
        return
    click.echo(f"Mailbox {shown.login} ({shown.email}) created in {target.display_name}.")
    if created.password:
        click.echo(f"Password: {created.password}  (shown only this once)")
    if left is not None:
        click.echo(f"Based on your limits, {left} additional mailboxes can be added.")


@user.command("list")
@domain_argument
@json_option
@needs_db
def user_list(domain: str, as_json: bool) -> None:
    """Mail and FTP users of DOMAIN, as in the manual's list."""
    from courriel.accounts.schemas import MailboxOut
    from courriel.accounts.services.limits import usage
    from courriel.accounts.services.mailboxes import mailboxes_of

    actor, target = _context(domain)
    rows = [MailboxOut.of(m, with_usage=True) for m in mailboxes_of(actor, target)]
    left = usage(target).additional_mailboxes
    if as_json:
        emit_json(rows)
        return
    if left is not None:
        click.echo(f"Based on your limits, {left} additional mailboxes can be added.\n")
    plan_quota = target.top.effective_plan.mail_quota
    table(
        ["Name", "IMAP/FTP login", "Real name", "Disk quota", "Quota used", "Login access"],
        [
            [
                r.email.split("@")[0],
                r.login,
                r.real_name,
                format_size(plan_quota if r.owner and r.quota is None else r.quota),
                format_size(r.quota_used or 0),
                "Disabled" if r.login_disabled else "Email only",
            ]
            for r in rows
        ],
    )


def _show(mailbox: Any) -> None:
    from courriel.accounts.schemas import MailboxOut

    shown = MailboxOut.of(mailbox, with_usage=True)
    auto = shown.autoreply
    facts(
        [
            ("Email address", shown.email + ("" if shown.primary_enabled else " (disabled)")),
            ("Login", shown.login),
            ("Real name", shown.real_name),
            (
                "Password",
                "Last changed on "
                + (
                    f"{shown.password_changed_at:%d/%b/%Y}"
                    if shown.password_changed_at
                    else "never"
                ),
            ),
            ("Login temporarily disabled", "yes" if shown.login_disabled else "no"),
            (
                "Home directory quota",
                f"{format_size(shown.quota)} ({format_size(shown.quota_used or 0)} used)",
            ),
            ("Primary email address enabled?", "Yes" if shown.primary_enabled else "No"),
            (
                "Inbox mail file",
                shown.inbox
                + (
                    f" (New mail received {shown.last_mail_at:%d/%b/%Y %H:%M})"
                    if shown.last_mail_at
                    else ""
                ),
            ),
            ("Additional email addresses", ", ".join(shown.additional_addresses) or "-"),
            ("Deliver to this user normally", "Yes" if shown.deliver_normally else "No"),
            ("Forward to other addresses", ", ".join(shown.forward_to) or "-"),
            ("Send automatic reply", "Yes" if auto.enabled else "No"),
            (
                "Automatic reply message",
                auto.message.replace("\n", " ")[:70] if auto.message else "-",
            ),
            (
                "Minimum time between autoreplies",
                format_duration(
                    None
                    if auto.interval_seconds is None
                    else timedelta(seconds=auto.interval_seconds)
                ),
            ),
            ("Automatic reply start date", auto.start.isoformat() if auto.start else "Any time"),
            ("Automatic reply end date", auto.end.isoformat() if auto.end else "Any time"),
        ]
    )


@user.command("show")
@click.argument("domain")
@click.argument("login")
@json_option
@needs_db
def user_show(domain: str, login: str, as_json: bool) -> None:
    """Edit Mailbox page of one user, as text."""
    from courriel.accounts.schemas import MailboxOut

    _, mailbox = _mailbox(domain, login)
    if as_json:
        emit_json(MailboxOut.of(mailbox, with_usage=True))
    else:
        _show(mailbox)


@user.command("modify")
@click.argument("domain")
@click.argument("login")
@click.option("--real-name", "--real", "real_name")
@click.option("--new-login", help="Rename the login.")
@click.option("--email", "primary", help="Change the primary address name.")
@click.option("--quota", help="3G, 1024M or unlimited.")
@click.option(
    "--disable/--enable",
    "login_disabled",
    default=None,
    help="Login temporarily disabled (mail still arrives).",
)
@click.option("--primary-enabled/--primary-disabled", default=None)
@click.option(
    "--address",
    "--extra",
    "addresses",
    multiple=True,
    help="Set the additional addresses (repeatable; replaces the list).",
)
@click.option("--add-address", multiple=True, help="Add an additional address.")
@click.option("--remove-address", multiple=True, help="Remove an additional address.")
@click.option("--clear-addresses", is_flag=True, help="Remove every additional address.")
@needs_db
def user_modify(
    domain: str,
    login: str,
    real_name: str | None,
    new_login: str | None,
    primary: str | None,
    quota: str | None,
    login_disabled: bool | None,
    primary_enabled: bool | None,
    addresses: tuple[str, ...],
    add_address: tuple[str, ...],
    remove_address: tuple[str, ...],
    clear_addresses: bool,
) -> None:
    """Change a mailbox (details, quota, addresses)."""
    from courriel.accounts.addresses import normalize_address
    from courriel.accounts.services.mailboxes import additional_emails, modify_mailbox

    actor, mailbox = _mailbox(domain, login)
    changes: dict[str, Any] = {}
    if real_name is not None:
        changes["real_name"] = real_name
    if new_login is not None:
        changes["login"] = new_login
    if primary is not None:
        changes["primary_local_part"] = primary
    if quota is not None:
        changes["quota"] = parse_size(quota)
    if login_disabled is not None:
        changes["login_disabled"] = login_disabled
    if primary_enabled is not None:
        changes["primary_enabled"] = primary_enabled
    if addresses or add_address or remove_address or clear_addresses:
        current = [] if clear_addresses or addresses else additional_emails(mailbox)
        wanted = list(addresses) + current + list(add_address)
        removed = {
            normalize_address(a if "@" in a else f"{a}@{mailbox.domain.name}")
            for a in remove_address
        }
        changes["addresses"] = [
            a
            for a in wanted
            if normalize_address(a if "@" in a else f"{a}@{mailbox.domain.name}") not in removed
        ]
    if not changes:
        raise click.UsageError("Nothing to change: give at least one option.")
    modify_mailbox(actor, mailbox, **changes)
    click.echo(f"Mailbox {login} changed.")


@user.command("delete")
@click.argument("domain")
@click.argument("logins", nargs=-1, required=True)
@yes_option
@needs_db
def user_delete(domain: str, logins: tuple[str, ...], yes: bool) -> None:
    """Delete mailboxes ("Delete Selected Users")."""
    from courriel.accounts.permissions import get_mailbox
    from courriel.accounts.services.mailboxes import delete_mailboxes

    actor, target = _context(domain)
    mailboxes = [get_mailbox(actor, login, target) for login in logins]
    confirm(
        f"Delete {len(mailboxes)} mailbox(es): {', '.join(logins)}? Their mail is moved to "
        "the data directory's 'deleted' folder.",
        yes,
    )
    deleted = delete_mailboxes(actor, mailboxes)
    click.echo("Deleted: " + ", ".join(deleted))


@user.command("password")
@click.argument("domain")
@click.argument("login")
@click.option("--password", "--pass", "password", help="The new password (else asked twice).")
@click.option("--generate", is_flag=True, help="Generate a new password and show it once.")
@needs_db
def user_password(domain: str, login: str, password: str | None, generate: bool) -> None:
    """Change a mailbox password (chapter 11)."""
    from courriel.accounts.services.mailboxes import generate_new_password, set_password

    actor, mailbox = _mailbox(domain, login)
    if generate:
        if password:
            raise click.UsageError("Give --password or --generate, not both.")
        new = generate_new_password(actor, mailbox)
        click.echo(f"New password for {mailbox.login}: {new}  (shown only this once)")
        return
    set_password(actor, mailbox, password if password is not None else read_password_twice())
    click.echo(f"Password of {mailbox.login} changed.")


@user.command("reset-2fa")
@click.argument("domain")
@click.argument("login")
@needs_db
def user_reset_2fa(domain: str, login: str) -> None:
    """Turn off a mailbox's two-factor sign-in (a lost phone and lost recovery codes):
    it signs in with its password alone, and turns it on again."""
    from courriel.accounts.services.twofactor import reset

    actor, mailbox = _mailbox(domain, login)
    reset(actor, mailbox)
    click.echo(f"Two-factor sign-in of {mailbox.login} turned off.")


@user.group("app-password")
def app_password() -> None:
    """App passwords: one per mail program, revocable, shown once (with two-factor
    sign-in on, IMAP, POP3 and SMTP take only these)."""


@app_password.command("add")
@click.argument("domain")
@click.argument("login")
@click.option("--name", required=True, help="The program or device, e.g. 'Phone'.")
@needs_db
def app_password_add(domain: str, login: str, name: str) -> None:
    """Make an app password for LOGIN and show it once."""
    from courriel.accounts.services.twofactor import create_app_password

    actor, mailbox = _mailbox(domain, login)
    created = create_app_password(actor, mailbox, name, None)
    click.echo(f"App password {created.app_password.pk} for {mailbox.login} ({name}):")
    click.echo(created.secret)
    click.echo("It is shown only this once: type it exactly so into the mail program.")


@app_password.command("list")
@click.argument("domain")
@click.argument("login")
@json_option
@needs_db
def app_password_list(domain: str, login: str, as_json: bool) -> None:
    """The app passwords of LOGIN (never the passwords themselves)."""
    from courriel.accounts.services.twofactor import app_passwords_of

    actor, mailbox = _mailbox(domain, login)
    rows = [
        {"id": a.pk, "name": a.name, "created_at": a.created_at, "last_used_at": a.last_used_at}
        for a in app_passwords_of(actor, mailbox)
    ]
    if as_json:
        emit_json(rows)
        return
    table(
        ["Id", "Name", "Created", "Last used"],
        [
            [r["id"], r["name"], f"{r['created_at']:%Y-%m-%d}", r["last_used_at"] or "never"]
            for r in rows
        ],
    )


@app_password.command("revoke")
@click.argument("domain")
@click.argument("login")
@click.argument("app_password_id", type=int)
@needs_db
def app_password_revoke(domain: str, login: str, app_password_id: int) -> None:
    """Revoke one: the program using it can no longer sign in."""
    from courriel.accounts.services.twofactor import revoke_app_password

    actor, mailbox = _mailbox(domain, login)
    gone = revoke_app_password(actor, mailbox, app_password_id)
    click.echo(f"App password {gone.name} of {mailbox.login} revoked.")


@user.command("send-account-mail")
@click.argument("domain")
@click.argument("login")
@click.option(
    "--to",
    "to",
    required=True,
    metavar="mailbox|ADDRESS",
    help="The mailbox's own address (mailbox) or another address.",
)
@needs_db
def user_send_account_mail(domain: str, login: str, to: str) -> None:
    """E-mail a mailbox's settings (servers, ports, login; never the password), like the
    panel's "Send updated account email to"."""
    from courriel.accounts.services.mailboxes import send_account_mail

    actor, mailbox = _mailbox(domain, login)
    sent_to = send_account_mail(actor, mailbox, to)
    click.echo(f"Account e-mail for {mailbox.login} sent to {sent_to}.")


@user.command("forward")
@click.argument("domain")
@click.argument("login")
@click.option("--to", "targets", multiple=True, help="Forward to this address (repeatable).")
@click.option("--no-keep", is_flag=True, help="Do not keep a copy in the mailbox.")
@click.option("--off", is_flag=True, help="Stop forwarding; deliver to the mailbox.")
@needs_db
def user_forward(
    domain: str, login: str, targets: tuple[str, ...], no_keep: bool, off: bool
) -> None:
    """Mail forwarding settings (chapter 8)."""
    from courriel.accounts.services.mailboxes import set_forwarding

    actor, mailbox = _mailbox(domain, login)
    if off:
        if targets:
            raise click.UsageError("Give --to or --off, not both.")
        set_forwarding(actor, mailbox, [], keep=True)
        click.echo(f"Forwarding of {login} turned off; mail is delivered to the mailbox.")
        return
    if not targets:
        raise click.UsageError("Give at least one --to ADDRESS, or --off.")
    set_forwarding(actor, mailbox, targets, keep=not no_keep)
    kept = "without keeping a copy" if no_keep else "and kept in the mailbox"
    click.echo(f"Mail for {login} is forwarded to {', '.join(targets)} {kept}.")


@user.command("autoreply")
@click.argument("domain")
@click.argument("login")
@click.option("--message", help="The automatic reply text.")
@click.option(
    "--message-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the reply text from a file.",
)
@click.option("--interval", help="Minimum time between replies to one sender: 10m, 1h, none.")
@click.option("--start", help="First day (YYYY-MM-DD or DD/MM/YYYY), or 'any'.")
@click.option("--end", help="Last day, or 'any'.")
@click.option("--off", is_flag=True, help="Stop sending automatic replies.")
@needs_db
def user_autoreply(
    domain: str,
    login: str,
    message: str | None,
    message_file: Path | None,
    interval: str | None,
    start: str | None,
    end: str | None,
    off: bool,
) -> None:
    """Vacation message (chapter 9)."""
    from courriel.accounts.services.mailboxes import UNSET, set_autoreply

    actor, mailbox = _mailbox(domain, login)
    if off:
        set_autoreply(actor, mailbox, enabled=False)
        click.echo(f"Automatic reply of {login} turned off.")
        return
    if message_file is not None:
        message = message_file.read_text("utf-8")
    if message is None and not mailbox.autoreply_message:
        raise click.UsageError("Give --message TEXT (or --message-file), or --off.")
    set_autoreply(
        actor,
        mailbox,
        enabled=True,
        message=message,
        interval=UNSET
        if interval is None
        else (
            None if interval.strip().lower() in {"none", "0", "no"} else parse_duration(interval)
        ),
        start=UNSET if start is None else parse_date(start),
        end=UNSET if end is None else parse_date(end),
    )
    click.echo(f"Automatic reply of {login} turned on.")


@user.command("import")
@domain_argument
@click.argument("file", type=click.File("r", encoding="utf-8"))
@json_option
@needs_db
def user_import(domain: str, file: Any, as_json: bool) -> None:
    """Batch create users from FILE ('-' for standard input).

    CSV with a header (login,real_name,password,quota,addresses,forward_to) or
    Virtualmin's username:realname:password:ftp:email:quota:extras:forwards lines.
    """
    from courriel.accounts.importer import import_mailboxes, parse

    actor, target = _context(domain)
    text = file.read()
    total = len(parse(text))
    with click.progressbar(
        length=total, label="Creating mailboxes", file=click.get_text_stream("stderr")
    ) as bar:
        reports = import_mailboxes(actor, target, text, progress=bar.update)
    failed = [r for r in reports if not r.ok]
    if as_json:
        emit_json([r.__dict__ for r in reports])
    else:
        table(
            ["Line", "Login", "Result", "Password"],
            [
                [r.line, r.login, "created" if r.ok else f"refused: {r.message}", r.password or ""]
                for r in reports
            ],
        )
        click.echo(f"\n{len(reports) - len(failed)} created, {len(failed)} refused.")
    if failed:
        raise SystemExit(65)
