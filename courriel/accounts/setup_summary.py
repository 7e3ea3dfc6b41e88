"""The facts of the manual's "mail domain has been set up successfully" message,
shown by the CLI and the panel and sent by e-mail to the customer."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from courriel.accounts.models import Domain


def setup_facts(domain: Domain, password: str | None) -> list[tuple[str, str]]:
    server = domain.server
    owner = domain.owner.login if domain.owner_id else ""  # type: ignore[union-attr]
    return [
        (str(_("Domain name")), domain.display_name),
        (str(_("Hosting server")), server.hostname),
        (str(_("Administration login")), owner),
        (str(_("Administration password")), password or str(_("(unchanged)"))),
        (str(_("Administration URL")), server.effective_admin_url),
        (str(_("Email domain")), domain.display_name),
        (str(_("SMTP server (sending)")), f"{server.hostname} (port 587, STARTTLS)"),
        (str(_("POP server (receiving)")), f"{server.hostname} (POP3 995, IMAP 993)"),
    ]
