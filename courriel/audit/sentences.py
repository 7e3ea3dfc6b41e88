"""The audit log read as sentences: "monsite changed the password of monsite0001".

Entries keep their stable action codes (`mailbox.password`), which the API and
`--json` give as they are; people read one sentence per entry, in their language. An
action without a sentence here (a new one) reads "<who>: <code> <target>", so nothing
is ever hidden.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, gettext_noop

from courriel.audit.models import AuditEntry

# action code: (sentence, short name for the filter). Values: %(actor)s, %(target)s,
# %(domain)s and the details named in the sentence.
SENTENCES: dict[str, tuple[str, str]] = {
    "mailbox.create": (
        gettext_noop("%(actor)s created the mailbox %(target)s"),
        gettext_noop("Mailbox created"),
    ),
    "mailbox.modify": (
        gettext_noop("%(actor)s changed the mailbox %(target)s: %(fields)s"),
        gettext_noop("Mailbox changed"),
    ),
    "mailbox.password": (
        gettext_noop("%(actor)s changed the password of %(target)s"),
        gettext_noop("Password changed"),
    ),
    "mailbox.delete": (
        gettext_noop("%(actor)s deleted the mailbox %(target)s"),
        gettext_noop("Mailbox deleted"),
    ),
    "mailbox.send_account_mail": (
        gettext_noop("%(actor)s sent the account e-mail of %(target)s to %(to)s"),
        gettext_noop("Account e-mail sent"),
    ),
    "alias.create": (
        gettext_noop("%(actor)s created the alias %(target)s"),
        gettext_noop("Alias created"),
    ),
    "alias.modify": (
        gettext_noop("%(actor)s changed the alias %(target)s"),
        gettext_noop("Alias changed"),
    ),
    "alias.delete": (
        gettext_noop("%(actor)s deleted the alias %(target)s"),
        gettext_noop("Alias deleted"),
    ),
    "domain.create": (
        gettext_noop("%(actor)s created the virtual server %(target)s on plan %(plan)s"),
        gettext_noop("Virtual server created"),
    ),
    "domain.modify": (
        gettext_noop("%(actor)s changed the virtual server %(target)s: %(fields)s"),
        gettext_noop("Virtual server changed"),
    ),
    "domain.delete": (
        gettext_noop("%(actor)s deleted the virtual server %(target)s"),
        gettext_noop("Virtual server deleted"),
    ),
    "domain_alias.add": (
        gettext_noop("%(actor)s added the domain alias %(target)s to %(domain)s"),
        gettext_noop("Domain alias added"),
    ),
    "domain_alias.delete": (
        gettext_noop("%(actor)s removed the domain alias %(target)s from %(domain)s"),
        gettext_noop("Domain alias removed"),
    ),
    "server.add": (
        gettext_noop("%(actor)s added the hosting server %(target)s"),
        gettext_noop("Hosting server added"),
    ),
    "server.modify": (
        gettext_noop("%(actor)s changed the hosting server %(target)s"),
        gettext_noop("Hosting server changed"),
    ),
    "server.delete": (
        gettext_noop("%(actor)s deleted the hosting server %(target)s"),
        gettext_noop("Hosting server deleted"),
    ),
    "plan.create": (
        gettext_noop("%(actor)s created the plan %(target)s"),
        gettext_noop("Plan created"),
    ),
    "plan.modify": (
        gettext_noop("%(actor)s changed the plan %(target)s"),
        gettext_noop("Plan changed"),
    ),
    "plan.delete": (
        gettext_noop("%(actor)s deleted the plan %(target)s"),
        gettext_noop("Plan deleted"),
    ),
    "admin.create": (
        gettext_noop("%(actor)s added the provider admin %(target)s"),
        gettext_noop("Admin added"),
    ),
    "admin.password": (
        gettext_noop("%(actor)s changed the password of the provider admin %(target)s"),
        gettext_noop("Admin password changed"),
    ),
    "token.create": (
        gettext_noop("%(actor)s created the API token %(target)s"),
        gettext_noop("API token created"),
    ),
    "token.revoke": (
        gettext_noop("%(actor)s revoked the API token %(target)s"),
        gettext_noop("API token revoked"),
    ),
    "queue.retry": (
        gettext_noop("%(actor)s asked for a new delivery try of queued mail (%(target)s)"),
        gettext_noop("Queued mail retried"),
    ),
    "queue.delete": (
        gettext_noop("%(actor)s deleted queued mail (%(target)s)"),
        gettext_noop("Queued mail deleted"),
    ),
    "backup.restore": (
        gettext_noop(
            "%(actor)s restored mail of %(domain)s from %(snapshot)s (messages: %(messages)s)"
        ),
        gettext_noop("Mail restored"),
    ),
    "backup.restore_database": (
        gettext_noop("%(actor)s restored the database from %(target)s"),
        gettext_noop("Database restored"),
    ),
    "backup.failed": (
        gettext_noop("The backup failed: %(message)s"),
        gettext_noop("Backup failed"),
    ),
    "greylist.domain": (
        gettext_noop("%(actor)s changed greylisting for %(target)s"),
        gettext_noop("Greylisting changed"),
    ),
    "greylist.mailbox": (
        gettext_noop("%(actor)s changed greylisting for the mailbox %(target)s"),
        gettext_noop("Greylisting changed for a mailbox"),
    ),
    "greylist.purge": (
        gettext_noop("%(actor)s cleared greylisting's memory (%(target)s)"),
        gettext_noop("Greylisting cleared"),
    ),
    "greylist.whitelist.add": (
        gettext_noop("%(actor)s whitelisted %(target)s against greylisting"),
        gettext_noop("Greylisting whitelist entry added"),
    ),
    "greylist.whitelist.remove": (
        gettext_noop("%(actor)s removed %(target)s from the greylisting whitelist"),
        gettext_noop("Greylisting whitelist entry removed"),
    ),
    "greylist.whitelist.import": (
        gettext_noop("%(actor)s imported %(added)s greylisting whitelist entries"),
        gettext_noop("Greylisting whitelist imported"),
    ),
    "filter.domain": (
        gettext_noop("%(actor)s changed the incoming mail checks of %(target)s"),
        gettext_noop("Incoming mail checks changed"),
    ),
    "filter.mailbox": (
        gettext_noop("%(actor)s changed the spam thresholds of %(target)s"),
        gettext_noop("Spam thresholds changed"),
    ),
    "domain.verify": (
        gettext_noop("%(actor)s proved control of %(target)s (DNS record found)"),
        gettext_noop("Domain name verified"),
    ),
    "domain.approve": (
        gettext_noop("%(actor)s approved %(target)s for %(domain)s"),
        gettext_noop("Domain name approved"),
    ),
    "two_factor.on": (
        gettext_noop("%(actor)s turned on two-step sign-in for %(target)s"),
        gettext_noop("Two-step sign-in on"),
    ),
    "two_factor.off": (
        gettext_noop("%(actor)s turned off two-step sign-in for %(target)s"),
        gettext_noop("Two-step sign-in off"),
    ),
    "two_factor.recovery_codes": (
        gettext_noop("%(actor)s made new recovery codes for %(target)s"),
        gettext_noop("Recovery codes renewed"),
    ),
    "two_factor.recovery_code_used": (
        gettext_noop("%(target)s signed in with a recovery code"),
        gettext_noop("Recovery code used"),
    ),
    "app_password.create": (
        gettext_noop("%(actor)s created the app password %(target)s"),
        gettext_noop("App password created"),
    ),
    "app_password.revoke": (
        gettext_noop("%(actor)s revoked the app password %(target)s"),
        gettext_noop("App password revoked"),
    ),
    "domain.move": (
        gettext_noop("%(actor)s started moving %(target)s from %(source)s to %(destination)s"),
        gettext_noop("Move started"),
    ),
    "domain.move.switched": (
        gettext_noop("%(target)s now lives on %(destination)s (moved from %(source)s)"),
        gettext_noop("Move done"),
    ),
    "domain.move.cancel": (
        gettext_noop("%(actor)s cancelled the move of %(target)s to %(destination)s"),
        gettext_noop("Move cancelled"),
    ),
    "server.forget-node": (
        gettext_noop("%(actor)s made the platform forget the machine of hosting server %(target)s"),
        gettext_noop("Hosting server machine forgotten"),
    ),
    "panel.impersonate": (
        gettext_noop("%(actor)s started looking at the panel as %(target)s"),
        gettext_noop("Viewing as an owner"),
    ),
    "panel.impersonate_end": (
        gettext_noop("%(actor)s stopped looking at the panel as %(target)s"),
        gettext_noop("Viewing as an owner ended"),
    ),
}
FALLBACK = gettext_noop("%(actor)s: %(action)s %(target)s")

# How the changed fields of a mailbox or virtual server are named in a sentence.
FIELDS: dict[str, str] = {
    "login": gettext_noop("login"),
    "primary_local_part": gettext_noop("e-mail address"),
    "real_name": gettext_noop("real name"),
    "login_disabled": gettext_noop("login access"),
    "quota": gettext_noop("quota"),
    "primary_enabled": gettext_noop("primary address"),
    "addresses": gettext_noop("additional addresses"),
    "language": gettext_noop("language"),
    "deliver_normally": gettext_noop("forwarding"),
    "forward_to": gettext_noop("forwarding"),
    "autoreply_enabled": gettext_noop("automatic reply"),
    "autoreply_message": gettext_noop("automatic reply"),
    "autoreply_interval": gettext_noop("automatic reply"),
    "autoreply_start": gettext_noop("automatic reply"),
    "autoreply_end": gettext_noop("automatic reply"),
    "plan": gettext_noop("plan"),
    "server": gettext_noop("hosting server"),
    "ip_address": gettext_noop("IP address"),
    "description": gettext_noop("description"),
    "contact_email": gettext_noop("contact e-mail"),
    "features": gettext_noop("enabled features"),
    "admin_group": gettext_noop("administration group"),
    "require_2fa": gettext_noop("two-step sign-in requirement"),
}


def _fields(details: dict[str, Any]) -> str:
    named: list[str] = []
    for key in details:
        if key in FIELDS and gettext(FIELDS[key]) not in named:
            named.append(gettext(FIELDS[key]))
    return ", ".join(named) or "—"


class _Values(dict[str, Any]):
    """A detail the sentence names but the entry lacks reads as "?", never an error."""

    def __missing__(self, key: str) -> str:
        return "?"


def describe(entry: AuditEntry) -> str:
    """The entry as one sentence in the active language."""
    values = _Values(
        {key: value for key, value in (entry.details or {}).items() if value is not None}
    )
    values.update(
        actor=entry.actor,
        target=entry.target,
        domain=entry.domain,
        action=entry.action,
        fields=_fields(entry.details or {}),
    )
    known = SENTENCES.get(entry.action)
    return gettext(known[0] if known else FALLBACK) % values


def action_choices() -> list[tuple[str, str]]:
    """The actions for the audit log's filter, by their short names."""
    return sorted(
        ((code, gettext(short)) for code, (_s, short) in SENTENCES.items()), key=lambda c: c[1]
    )
