"""What a mail client needs to reach a domain's mailboxes: the domain's hosting server
as `courriel.accounts.connection` describes it, written into every autoconfiguration
format."""

from __future__ import annotations

from dataclasses import dataclass

from courriel.accounts.connection import Endpoint, connection
from courriel.accounts.models import Domain

__all__ = ["ClientSettings", "Endpoint", "client_settings"]


@dataclass(frozen=True)
class ClientSettings:
    domain: str  # A-label
    display_name: str
    imap: Endpoint | None
    pop3: Endpoint | None
    smtp: Endpoint | None

    @property
    def endpoints(self) -> list[Endpoint]:
        return [e for e in (self.imap, self.pop3, self.smtp) if e is not None]


def client_settings(domain: Domain) -> ClientSettings:
    reach = connection(domain.server)
    return ClientSettings(
        domain=domain.name,
        display_name=domain.display_name,
        imap=reach.imap,
        pop3=reach.pop3,
        smtp=reach.smtp,
    )
