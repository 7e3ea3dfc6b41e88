"""How customers reach a hosting server: the panel's address and the mail servers with
their ports. One place for the facts that the set-up page and mail, the account mail,
My account, Edit Mailbox and every autoconfiguration format give, so that none of
them can name a port this installation does not listen on.

The panel's address is, first found: the hosting server's own administration URL,
`[web] public_url`, or `https://<host name>:<[web] port>/`. The mail servers are the
hosting server's host name with this installation's listeners (every hosting server
of a provider runs the same configuration): IMAP over implicit TLS (`[imaps]`) or
else STARTTLS (`[imap]`), the same for POP3, and submission with STARTTLS. In edge
mode Postfix and Dovecot own the public ports, and the `[imaps]`, `[pop3s]` and
`[submission]` ports are taken to be theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from courriel.config import Config, get_config

if TYPE_CHECKING:
    from courriel.accounts.models import HostingServer

Security = Literal["SSL", "STARTTLS"]  # Thunderbird's words: implicit TLS, or STARTTLS


@dataclass(frozen=True)
class Endpoint:
    protocol: str  # imap, pop3, smtp
    hostname: str
    port: int
    security: Security

    @property
    def security_label(self) -> str:
        """What mail programs call it: SSL/TLS or STARTTLS."""
        return "SSL/TLS" if self.security == "SSL" else "STARTTLS"


@dataclass(frozen=True)
class Connection:
    """What a customer of one hosting server types into a browser and a mail program."""

    hostname: str
    admin_url: str
    imap: Endpoint | None
    pop3: Endpoint | None
    smtp: Endpoint | None

    @property
    def endpoints(self) -> list[Endpoint]:
        return [e for e in (self.imap, self.pop3, self.smtp) if e is not None]


def admin_url(server: HostingServer, config: Config | None = None) -> str:
    config = config or get_config()
    if server.admin_url:
        return server.admin_url
    public = str(config.web.get("public_url", "") or "").strip()
    if public:
        return public if public.endswith("/") else public + "/"
    port = int(config.web.port)
    return f"https://{server.hostname}/" if port == 443 else f"https://{server.hostname}:{port}/"


def _listener(
    config: Config, protocol: str, host: str, implicit: str, starttls: str | None
) -> Endpoint | None:
    edge = config.general.mode == "edge"
    if edge or getattr(config, implicit).enabled:
        return Endpoint(protocol, host, int(getattr(config, implicit).port), "SSL")
    if starttls and getattr(config, starttls).enabled:
        return Endpoint(protocol, host, int(getattr(config, starttls).port), "STARTTLS")
    return None


def connection(server: HostingServer) -> Connection:
    config = get_config()
    host = server.hostname
    submission = config.submission
    smtp = (
        Endpoint("smtp", host, int(submission.port), "STARTTLS")
        if submission.enabled or config.general.mode == "edge"
        else None
    )
    return Connection(
        hostname=host,
        admin_url=admin_url(server, config),
        imap=_listener(config, "imap", host, "imaps", "imap"),
        pop3=_listener(config, "pop3", host, "pop3s", "pop3"),
        smtp=smtp,
    )
