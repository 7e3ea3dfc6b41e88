"""The `[backup]` configuration, checked once and turned into typed values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from courriel.config import Config, get_config
from courriel.errors import ConfigError

_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


@dataclass(frozen=True)
class BackupPolicy:
    directory: Path
    explicit_directory: bool  # named by the operator: must exist (disk mounted)
    enabled: bool
    at: time
    daily: int
    weekly: int
    weekly_every: int
    database_days: int
    sync: bool
    workers: int
    mail_root: Path
    data_dir: Path


def parse_time(text: str) -> time:
    match = _TIME_RE.match(text or "")
    if match:
        hour, minute, second = (int(g or 0) for g in match.groups())
        if hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second)
    raise ConfigError(
        f"[backup] time: {text!r} is not a time of day; write HH:MM or HH:MM:SS, e.g. 03:30."
    )


def load_policy(config: Config | None = None) -> BackupPolicy:
    config = config or get_config()
    section = config.backup
    for key in ("daily", "weekly", "weekly_every", "database_days"):
        if section[key] < 0:
            raise ConfigError(f"[backup] {key} cannot be negative.")
    if section.daily < 1:
        raise ConfigError("[backup] daily must keep at least 1 snapshot.")
    if section.weekly_every < 1:
        raise ConfigError("[backup] weekly_every must be at least 1 day.")
    configured = section.directory.strip()
    return BackupPolicy(
        directory=Path(configured).resolve() if configured else config.data_dir / "backups",
        explicit_directory=bool(configured),
        enabled=section.enabled,
        at=parse_time(section.time),
        daily=section.daily,
        weekly=section.weekly,
        weekly_every=section.weekly_every,
        database_days=section.database_days,
        sync=section.sync,
        workers=max(1, section.workers),
        mail_root=config.mail_root,
        data_dir=config.data_dir,
    )


def time_zone() -> ZoneInfo:
    """The server's zone ([general] time_zone, else the system's), as Django uses it."""
    from courriel import settings

    return ZoneInfo(settings.TIME_ZONE)


def local_now() -> datetime:
    return datetime.now(time_zone())


def database_settings() -> dict[str, Any]:
    """The live database, without setting Django up when it is not (a backup needs no
    web framework; under Django, the connection's own settings, test databases included)."""
    from django.apps import apps

    if apps.ready:
        from django.db import connections

        return connections["default"].settings_dict
    from courriel import settings

    return settings.DATABASES["default"]
