"""Where mail for a domain goes: our own mailboxes, a transport map entry, the
configured smarthost, or the domain's MX hosts (dnspython), like Postfix's
transport_maps, relayhost and MX look-up, in that order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from courriel.config import get_config


@dataclass(frozen=True)
class Hop:
    host: str
    port: int
    security: Literal["starttls", "tls", "none", "opportunistic"] = "opportunistic"
    user: str = ""
    password: str = ""


@dataclass(frozen=True)
class Route:
    kind: Literal["local", "remote"]
    hops: tuple[Hop, ...] = ()
    error: str = ""  # a temporary error finding the route (DNS failure...)
    permanent: bool = False  # the domain cannot receive mail at all


def _parse_hostport(text: str, default_port: int = 25) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [host]:port, Postfix style, or [ipv6]:port
        host, _, rest = text[1:].partition("]")
        port = int(rest.lstrip(":") or default_port)
        return host, port
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


def transport_map() -> dict[str, tuple[str, int]]:
    """`[queue] transport = ["gmail.com=127.0.0.1:2525", ...]` as a dict; the domain
    `*` catches every remote domain (a provider sending everything through one host)."""
    entries: dict[str, tuple[str, int]] = {}
    for item in get_config().queue.transport:
        domain, _, target = item.partition("=")
        if domain.strip() and target.strip():
            entries[domain.strip().lower()] = _parse_hostport(target)
    return entries


def mx_hosts(domain: str) -> tuple[list[str], str, bool]:
    """(hosts by preference, temporary error, permanent) from DNS."""
    from courriel.dns.resolver import DNSTemporaryError, mx

    try:
        answer = mx(domain)
    except DNSTemporaryError as error:
        return [], str(error), False
    if not answer.exists:
        return [], f"domain {domain} does not exist", True
    if answer.null_mx:
        return [], f"{domain} accepts no mail (null MX)", True
    return answer.hosts, "", False


def route_for(domain: str) -> Route:
    from courriel.accounts.resolution import hosted_domain

    domain = domain.lower()
    if hosted_domain(domain) is not None:
        return Route("local")
    entries = transport_map()
    mapped = entries.get(domain) or entries.get("*")
    if mapped:
        return Route("remote", (Hop(mapped[0], mapped[1]),))
    config = get_config().queue
    if config.relayhost:
        host, port = _parse_hostport(config.relayhost, 587)
        return Route(
            "remote",
            (Hop(host, port, config.relay_security, config.relay_user, config.relay_password),),
        )
    hosts, error, permanent = mx_hosts(domain)
    if not hosts:
        return Route("remote", error=error, permanent=permanent)
    return Route("remote", tuple(Hop(host, 25) for host in hosts[:5]))
