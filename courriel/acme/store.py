"""Where ACME state lives, under `<data>/tls/acme/` (the service user's, 0600/0700):

- `<name>/fullchain.pem` and `<name>/key.pem`: a certificate, under its first name;
- `challenges/<token>`: HTTP-01 answers, read by the port-80 responder (which may run
  in another process than the one asking the CA, e.g. `courriel tls renew`);
- `challenges/tls-alpn-01/<name>`: a pending TLS-ALPN-01 challenge's certificate and
  key, read by the panel's listener (`courriel.acme.alpn`);
- `account.key`: the ACME account; `status.json`: the last round's outcome;
  `round.lock`: held by the round running (`round_lock`).

Files are written whole and renamed into place, so that a reload never reads half
a certificate.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from courriel.config import Config

_NAME = re.compile(r"^[a-z0-9.-]{1,253}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def root(config: Config) -> Path:
    return config.data_dir / "tls" / "acme"


def _host_name(name: str) -> bool:
    return bool(_NAME.match(name)) and ".." not in name


def directory(config: Config, name: str) -> Path:
    if not _host_name(name):
        raise ValueError(f"not a host name: {name!r}")
    return root(config) / name


def write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def names_of(chain: Path) -> list[str]:
    """The DNS names of a certificate (its subjectAltName)."""
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(chain.read_bytes())
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (OSError, ValueError, x509.ExtensionNotFound):
        return []
    return [name.lower() for name in extension.value.get_values_for_type(x509.DNSName)]


def issued(config: Config) -> list[tuple[str, Path, Path]]:
    """(directory name, chain, key) of every certificate held."""
    base = root(config)
    if not base.is_dir():
        return []
    found = []
    for entry in sorted(base.iterdir()):
        chain, key = entry / "fullchain.pem", entry / "key.pem"
        if entry.is_dir() and chain.is_file() and key.is_file():
            found.append((entry.name, chain, key))
    return found


def by_name(config: Config) -> list[tuple[str, Path, Path]]:
    """(served name, chain, key): every name of every certificate, for SNI."""
    return [
        (name, chain, key) for _directory, chain, key in issued(config) for name in names_of(chain)
    ]


def save(config: Config, name: str, chain: bytes, key: bytes) -> None:
    target = directory(config, name)
    write_private(target / "key.pem", key)
    write_private(target / "fullchain.pem", chain)


def challenge_path(config: Config, token: str) -> Path | None:
    return root(config) / "challenges" / token if _TOKEN.match(token) else None


def save_challenge(config: Config, token: str, validation: str) -> None:
    path = challenge_path(config, token)
    if path is None:
        raise ValueError("bad ACME token")
    write_private(path, validation.encode("ascii"))


def drop_challenge(config: Config, token: str) -> None:
    path = challenge_path(config, token)
    if path is not None:
        path.unlink(missing_ok=True)


def alpn_challenge_path(config: Config, name: str) -> Path | None:
    """Where a TLS-ALPN-01 challenge for `name` is kept; None for what is not a host
    name (the name comes from a client's SNI)."""
    if not _host_name(name):
        return None
    return root(config) / "challenges" / "tls-alpn-01" / name


@contextmanager
def round_lock(config: Config) -> Iterator[None]:
    """Held while a renewal round runs, whichever process runs it (waits for the
    other's)."""
    path = root(config) / "round.lock"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def read_status(config: Config) -> dict[str, Any]:
    try:
        return json.loads((root(config) / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def write_status(config: Config, status: dict[str, Any]) -> None:
    write_private(root(config) / "status.json", json.dumps(status, indent=1).encode())
