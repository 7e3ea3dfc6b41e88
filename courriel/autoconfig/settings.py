"""What a mail client needs to reach a domain's mailboxes: one description, shown in
the self-service page and written into every autoconfiguration format."""

from __future__ import annotations

from dataclasses import dataclass

from courriel.accounts.models import Domain
from courriel.config import get_config


@dataclass(frozen=True)
class Endpoint:
    protocol: str  # imap, pop3, smtp
    hostname: str
    port: int
    security: str  # "SSL" (implicit TLS) or "STARTTLS", Thunderbird's words


@dataclass(frozen=True)
class ClientSettings:
    domain: str  # A-label
    display_name: str
    imap: Endpoint
    pop3: Endpoint
    smtp: Endpoint

    @property
    def endpoints(self) -> list[Endpoint]:
        return [self.imap, self.pop3, self.smtp]


def client_settings(domain: Domain) -> ClientSettings:
    """The domain's hosting server, with the ports this installation listens on (every
    hosting server of a provider runs the same configuration)."""
    config = get_config()
    host = domain.server.hostname
    return ClientSettings(
        domain=domain.name,
        display_name=domain.display_name,
        imap=Endpoint("imap", host, int(config.imaps.port), "SSL"),
        pop3=Endpoint("pop3", host, int(config.pop3s.port), "SSL"),
        smtp=Endpoint("smtp", host, int(config.submission.port), "STARTTLS"),
    )
