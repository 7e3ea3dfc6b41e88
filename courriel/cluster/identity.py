"""Which hosting server this process is, and its secret.

`[general] server` names the hosting server a `courriel serve` runs as. Empty, the
machine is the whole platform: every domain's mail is here, whatever server its
record names (the one-machine default, and what every install did before clusters).

Each node has a secret of its own, made at its first start in
`<data_dir>/cluster.key` (0600). Other nodes never see it: a node proves who it is
by sending it over TLS, and the receiver compares its SHA-256 with the hash the
node registered in the shared database. A copy of the database therefore cannot
impersonate a node, and replacing a machine means registering the new one
explicitly (`courriel server forget-node NAME`), never silently.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import ssl
from datetime import timedelta
from functools import cache
from pathlib import Path

from courriel.config import Config, get_config
from courriel.errors import ConfigError
from courriel.i18n import gettext as _

KEY_FILE = "cluster.key"
# A node whose heartbeat is younger than this is running (see heartbeat.py).
ALIVE = timedelta(seconds=45)


def server_name(config: Config | None = None) -> str:
    """`[general] server`, as names are stored ('' when not set)."""
    return ((config or get_config()).general.server or "").strip().lower()


def clustered(config: Config | None = None) -> bool:
    return bool(server_name(config))


def uses_postgresql(config: Config | None = None) -> bool:
    return bool((config or get_config()).database_url)


@cache
def _server_id(name: str) -> int | None:
    from courriel.accounts.models import HostingServer

    return HostingServer.objects.filter(name=name).values_list("pk", flat=True).first()


def local_server_id() -> int | None:
    """The id of the hosting server this process runs as; None when it is the whole
    platform (no `[general] server`). A name that names no server is an error."""
    name = server_name()
    if not name:
        return None
    found = _server_id(name)
    if found is None:
        _server_id.cache_clear()
        raise ConfigError(unknown_server_message(name))
    return found


def unknown_server_message(name: str) -> str:
    return _(
        "[general] server = %(name)s names no hosting server. Add it first with "
        "`courriel server add %(name)s HOSTNAME` (`courriel server list` shows them)."
    ) % {"name": repr(name)}


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return bool(stored_hash) and hmac.compare_digest(digest(secret), stored_hash)


def key_path(config: Config | None = None) -> Path:
    return (config or get_config()).data_dir / KEY_FILE


def node_secret(config: Config | None = None, *, create: bool = False) -> str:
    """This node's secret; made once (only `courriel serve` creates it)."""
    path = key_path(config)
    try:
        return path.read_text("ascii").strip()
    except FileNotFoundError:
        if not create:
            raise ConfigError(
                _(
                    "This machine has no cluster key (%(path)s): start `courriel serve` "
                    "with [general] server set once to make it."
                )
                % {"path": path}
            ) from None
    secret = secrets.token_urlsafe(32)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it at the same moment
        return path.read_text("ascii").strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return secret


def certificate_fingerprint(config: Config | None = None) -> str:
    """SHA-256 (hex) of the certificate this node shows to a client that sends no
    server name: the `[tls]` one, what other nodes connecting by address get."""
    config = config or get_config()
    try:
        pem = config.tls_cert.read_text("ascii")
    except OSError:
        return ""
    start = pem.find("-----BEGIN CERTIFICATE-----")
    end = pem.find("-----END CERTIFICATE-----", start)
    if start < 0 or end < 0:
        return ""
    der = ssl.PEM_cert_to_DER_cert(pem[start : end + len("-----END CERTIFICATE-----")])
    return hashlib.sha256(der).hexdigest()
