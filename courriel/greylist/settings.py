"""The `[greylist]` configuration section, parsed once into plain numbers (seconds)."""

from __future__ import annotations

from dataclasses import dataclass

from courriel.config import Config, get_config
from courriel.errors import ConfigError, ValidationError
from courriel.networks import Network, parse_networks
from courriel.units import parse_duration


def _seconds(section: str, key: str, text: str) -> float:
    try:
        return parse_duration(text, default_unit="s").total_seconds()
    except ValidationError as error:
        raise ConfigError(f"[{section}] {key}: {error.message}") from None


def _networks(values: list[str]) -> tuple[Network, ...]:
    try:
        return parse_networks(values)
    except ValueError as error:
        raise ConfigError(f"[smtp] trusted_networks: {error}") from None


@dataclass(frozen=True)
class Settings:
    enabled: bool = True
    delay: float = 15 * 60
    retry_window: float = 2 * 86400
    expiry: float = 35 * 86400
    ipv4_prefix: int = 24
    ipv6_prefix: int = 64
    auto_whitelist_after: int = 5
    auto_whitelist_interval: float = 3600
    fail_open: bool = True
    help_url: str = ""
    default_whitelist: bool = True
    cache_size: int = 200_000
    flush_interval: float = 1
    reload_interval: float = 5
    purge_interval: float = 3600
    dns_timeout: float = 3
    hostname: str = "localhost"
    # [smtp] trusted_networks: clients there are never greylisted, whichever door
    # their mail comes through (our SMTP server or Postfix's policy requests).
    trusted_networks: tuple[Network, ...] = ()

    @classmethod
    def from_config(cls, config: Config | None = None) -> Settings:
        config = config or get_config()
        section = config.greylist
        durations = {
            key: _seconds("greylist", key, section[key])
            for key in (
                "delay",
                "retry_window",
                "expiry",
                "auto_whitelist_interval",
                "flush_interval",
                "reload_interval",
                "purge_interval",
                "dns_timeout",
            )
        }
        settings = cls(
            enabled=section.enabled,
            ipv4_prefix=section.ipv4_prefix,
            ipv6_prefix=section.ipv6_prefix,
            auto_whitelist_after=section.auto_whitelist_after,
            fail_open=section.fail_open,
            help_url=section.help_url,
            default_whitelist=section.default_whitelist,
            cache_size=section.cache_size,
            hostname=config.hostname,
            trusted_networks=_networks(config.smtp.trusted_networks),
            **durations,
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        problems = []
        if not 0 <= self.ipv4_prefix <= 32:
            problems.append("ipv4_prefix must be between 0 and 32")
        if not 0 <= self.ipv6_prefix <= 128:
            problems.append("ipv6_prefix must be between 0 and 128")
        if self.retry_window <= self.delay:
            problems.append("retry_window must be longer than delay")
        if self.expiry < self.retry_window:
            problems.append("expiry must be at least retry_window")
        if self.auto_whitelist_after < 0:
            problems.append("auto_whitelist_after cannot be negative (0 turns it off)")
        if self.cache_size < 1000:
            problems.append("cache_size must be at least 1000")
        if self.flush_interval <= 0 or self.reload_interval <= 0 or self.purge_interval <= 0:
            problems.append("flush_interval, reload_interval and purge_interval must be positive")
        if problems:
            raise ConfigError("[greylist] " + "; ".join(problems) + ".")
