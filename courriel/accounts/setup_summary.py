"""The facts of the manual's "mail domain has been set up successfully" message,
shown by the CLI and the panel and sent by e-mail to the customer.

Each fact has a stable key (what the API and `--json` give, in every language) and a
label in the reader's language; the addresses and ports come from
`courriel.accounts.connection`, like everywhere else they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from courriel.accounts.connection import Endpoint, connection
from courriel.accounts.models import Domain
from courriel.i18n import gettext as _


@dataclass(frozen=True)
class Fact:
    key: str
    label: str
    value: str


def endpoint_text(endpoint: Endpoint | None) -> str:
    """`maximusconfessor.all2all.org, port 993 (SSL/TLS)`, or that it is not offered."""
    if endpoint is None:
        return _("not offered on this server")
    return _("%(host)s, port %(port)s (%(security)s)") % {
        "host": endpoint.hostname,
        "port": endpoint.port,
        "security": endpoint.security_label,
    }


def setup_facts(domain: Domain, password: str | None) -> list[Fact]:
    reach = connection(domain.server)
    owner = domain.owner.login if domain.owner_id else ""  # type: ignore[union-attr]
    return [
        Fact("domain", _("Domain name"), domain.display_name),
        Fact("hosting_server", _("Hosting server"), reach.hostname),
        Fact("admin_login", _("Administration login"), owner),
        Fact("admin_password", _("Administration password"), password or _("(unchanged)")),
        Fact("admin_url", _("Administration URL"), reach.admin_url),
        Fact("mail_domain", _("Email domain"), domain.display_name),
        Fact("smtp_server", _("SMTP server (sending)"), endpoint_text(reach.smtp)),
        Fact("imap_server", _("IMAP server (receiving)"), endpoint_text(reach.imap)),
        Fact("pop3_server", _("POP3 server (receiving)"), endpoint_text(reach.pop3)),
    ]


def facts_by_key(facts: list[Fact]) -> dict[str, str]:
    """The facts as the API and `--json` give them: stable keys, whatever the language."""
    return {fact.key: fact.value for fact in facts}
