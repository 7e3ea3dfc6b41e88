"""The incoming checks' settings, read once from the configuration ([auth], [filter],
[lmtp] xforward_hosts)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from courriel.config import Config
from courriel.errors import ConfigError
from courriel.units import parse_duration, parse_size

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _url(section: str, key: str, value: str) -> str:
    value = value.strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"[{section}] {key}: expected http://host:port, got {value!r}")
    return value


@dataclass(frozen=True)
class FilterSettings:
    dmarc_enforce: bool = True
    rspamd_url: str = ""
    controller_url: str = ""
    password: str = ""
    timeout: float = 15.0
    fail_open: bool = True
    xforward_hosts: tuple[Network, ...] = ()
    whole_check_limit: int = 10 * 1024 * 1024

    @classmethod
    def from_config(cls, config: Config) -> FilterSettings:
        section = config.filter
        try:
            hosts = tuple(ipaddress.ip_network(n, strict=False) for n in config.lmtp.xforward_hosts)
        except ValueError as error:
            raise ConfigError(f"[lmtp] xforward_hosts: {error}") from None
        return cls(
            dmarc_enforce=bool(config.auth.dmarc_enforce),
            rspamd_url=_url("filter", "rspamd_url", section.rspamd_url),
            controller_url=_url("filter", "rspamd_controller_url", section.rspamd_controller_url),
            password=section.rspamd_password,
            timeout=parse_duration(section.timeout).total_seconds(),
            fail_open=bool(section.fail_open),
            xforward_hosts=hosts,
            whole_check_limit=parse_size(section.whole_check_limit, allow_unlimited=False),
        )
