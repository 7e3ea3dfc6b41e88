"""Mail the platform itself sends: the manual's "mail domain has been set up" message,
the new-account message, quota warnings, and reports to the provider.

All go through the outbound queue with the null sender (RFC 3834: automatic messages
must not cause bounces to be sent back), in the customer's language.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from courriel.accounts.models import Domain, Mailbox
from courriel.config import get_config
from courriel.outbound.spool import Entry, get_spool
from courriel.units import format_size


def _language(mailbox: Mailbox | None = None) -> str:
    if mailbox is not None and mailbox.language:
        return mailbox.language
    return get_config().general.language or "en"


def compose(to: list[str], subject: str, body: str) -> bytes:
    hostname = get_config().hostname
    message = EmailMessage()
    message["From"] = f"Courriel <postmaster@{hostname}>"
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = format_datetime(timezone.now())
    message["Message-ID"] = make_msgid(domain=hostname)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body, charset="utf-8", cte="quoted-printable")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def queue_notice(to: list[str], subject: str, body: str, note: str) -> Entry:
    return get_spool().enqueue("", to, compose(to, subject, body), kind="notice", note=note)


def send_setup_mail(domain: Domain, password: str | None) -> Entry | None:
    """Chapter 1: the access codes, to the customer's contact address."""
    from courriel.accounts.setup_summary import setup_facts

    if not domain.contact_email:
        return None
    with translation.override(_language(domain.owner)):
        facts = setup_facts(domain, password)
        body = (
            _("The following mail domain has been set up successfully:")
            + "\n\n"
            + "\n".join(f"{fact.label}: {fact.value}" for fact in facts)
            + "\n\n"
            + _("Keep this message in a safe place: the password is not stored in clear.")
            + "\n"
        )
        subject = _("Mail domain %(domain)s has been set up") % {"domain": domain.display_name}
    return queue_notice([domain.contact_email], subject, body, f"setup {domain.name}")


def send_account_mail(mailbox: Mailbox, to: str, password: str | None) -> Entry:
    """ "Send account e-mail to": the new mailbox's settings for its mail client."""
    from courriel.accounts.connection import connection
    from courriel.accounts.services.mailboxes import primary_email
    from courriel.accounts.setup_summary import endpoint_text

    reach = connection(mailbox.domain.server)
    with translation.override(_language(mailbox)):
        lines = [
            _("A mailbox has been created for you."),
            "",
            f"{_('Email address')}: {primary_email(mailbox)}",
            f"{_('Login')}: {mailbox.login}",
            f"{_('Password')}: " + (password or _("the password your administrator gave you")),
            f"{_('Incoming mail (IMAP)')}: {endpoint_text(reach.imap)}",
            f"{_('Incoming mail (POP3)')}: {endpoint_text(reach.pop3)}",
            f"{_('Outgoing mail (SMTP)')}: {endpoint_text(reach.smtp)}",
            f"{_('Web panel')}: {reach.admin_url}",
        ]
        subject = _("Your new mailbox %(address)s") % {"address": primary_email(mailbox)}
    return queue_notice([to], subject, "\n".join(lines) + "\n", f"account {mailbox.login}")


def send_quota_warning(
    mailbox: Mailbox, level: int, used: int, quota: int, recipients: list[str]
) -> Entry:
    with translation.override(_language(mailbox)):
        subject = _("Mailbox %(login)s is %(level)s%% full") % {
            "login": mailbox.login,
            "level": level,
        }
        body = _(
            "The mailbox %(login)s uses %(used)s of its %(quota)s.\n\n"
            "When it is full, new mail for it can no longer be stored (forwarding keeps "
            "working). Delete old messages and empty the Trash folder, or ask the domain "
            "owner for a larger quota."
        ) % {"login": mailbox.login, "used": format_size(used), "quota": format_size(quota)}
    return queue_notice(recipients, subject, body + "\n", f"quota {level} {mailbox.login}")


def report_to_provider(subject: str, body: str) -> Entry | None:
    """Problems the provider must hear about (failed backups...), if an address is set."""
    address = get_config().general.provider_email
    if not address:
        return None
    return queue_notice([address], subject, body, "provider report")
