"""Where issued certificates live: `<data>/tls/acme/<name>/` holds `fullchain.pem` and
`key.pem` (the service user's, 0600), written whole and renamed into place so that a
reload never reads half a certificate."""

from __future__ import annotations

import os
import re
from pathlib import Path

from courriel.config import Config

_NAME = re.compile(r"^[a-z0-9.-]{1,253}$")


def root(config: Config) -> Path:
    return config.data_dir / "tls" / "acme"


def directory(config: Config, name: str) -> Path:
    if not _NAME.match(name) or ".." in name:
        raise ValueError(f"not a host name: {name!r}")
    return root(config) / name


def issued(config: Config) -> list[tuple[str, Path, Path]]:
    found = []
    base = root(config)
    if not base.is_dir():
        return found
    for entry in sorted(base.iterdir()):
        chain, key = entry / "fullchain.pem", entry / "key.pem"
        if entry.is_dir() and chain.is_file() and key.is_file():
            found.append((entry.name, chain, key))
    return found


def save(config: Config, name: str, chain: bytes, key: bytes) -> None:
    target = directory(config, name)
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    for filename, data in (("key.pem", key), ("fullchain.pem", chain)):
        tmp = target / f".{filename}.new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(target / filename)
