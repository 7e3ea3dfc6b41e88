"""Client addresses against lists of networks (`[smtp] trusted_networks`...)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: list[str]) -> tuple[Network, ...]:
    """Raises ValueError naming the bad entry."""
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


@lru_cache(maxsize=65536)
def in_networks(ip: str, networks: tuple[Network, ...]) -> bool:
    """Asked for every SMTP client (and every policy request): cached per address."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in networks)
