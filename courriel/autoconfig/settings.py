"""What a mail client needs to reach a domain's mailboxes: the domain's hosting server
as `courriel.accounts.connection` describes it, written into every autoconfiguration
format."""

from __future__ import annotations

from dataclasses import dataclass, fields

from courriel.accounts.connection import Connection, Endpoint, connection
from courriel.accounts.models import Domain

__all__ = ["ClientSettings", "Endpoint", "client_settings"]


@dataclass(frozen=True)
class ClientSettings(Connection):
    """The domain's hosting server's connection facts, with the domain's names."""

    domain: str  # A-label
    display_name: str


def client_settings(domain: Domain) -> ClientSettings:
    reach = connection(domain.server)
    return ClientSettings(
        **{f.name: getattr(reach, f.name) for f in fields(reach)},
        domain=domain.name,
        display_name=domain.display_name,
    )
