"""Effective configuration: shipped defaults, then the TOML file, then COURRIEL_* variables.

The defaults file (`default_config.toml`) is the documentation of every key: a key
that is not in it does not exist, so a typo in the operator's file is an error
rather than a silently ignored setting. Environment variables follow one rule,
`[section] key` -> `COURRIEL_SECTION_KEY`, so that tests and operators can move
every port without editing files.
"""

from __future__ import annotations

import os
import socket
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from courriel.errors import ConfigError

ENV_PREFIX = "COURRIEL_"
SECRET_KEYS = {
    ("general", "secret_key"),
    ("tls", "key"),
    ("queue", "relay_password"),
    ("srs", "secret"),
    ("filter", "rspamd_password"),
}
LISTENERS = (
    "web",
    "smtp",
    "submission",
    "lmtp",
    "imap",
    "imaps",
    "pop3",
    "pop3s",
    "policy",
    "socketmap",
    "relay",
    "acme",
    "cluster",
)
MODES = ("embedded", "edge")
# In edge mode Postfix and Dovecot own the public ports; we serve them on loopback.
READING = ("imap", "imaps", "pop3", "pop3s")  # the listeners where users read mail
EDGE_OFF = ("smtp", "submission", *READING)
EDGE_ON = ("lmtp", "policy", "socketmap", "relay")


def default_config_text() -> str:
    return resources.files("courriel").joinpath("default_config.toml").read_text("utf-8")


def _coerce(value: str, like: Any, name: str) -> Any:
    """Turn an environment string into the type of the default value."""
    if isinstance(like, bool):
        lowered = value.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if isinstance(like, int):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{name}: expected a whole number, got {value!r}") from None
    if isinstance(like, list):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Section(dict[str, Any]):
    """One `[section]` of the configuration, readable as attributes."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


@dataclass
class Config:
    sections: dict[str, Section]
    path: Path | None = None
    overridden: set[tuple[str, str]] = field(default_factory=set)
    # $COURRIEL_DATA, /var/lib/courriel or ./courriel-data (see default_data_dir), read
    # once at load (asked per message later).
    default_data_dir: str = "courriel-data"

    def __getattr__(self, name: str) -> Section:
        try:
            return self.__dict__["sections"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def data_dir(self) -> Path:
        return _absolute(self.sections["general"]["data_dir"] or self.default_data_dir)

    @property
    def mail_root(self) -> Path:
        configured = self.sections["mail"]["root"]
        return _absolute(configured) if configured else child(self.data_dir, "mail")

    @property
    def hostname(self) -> str:
        return self.sections["general"]["hostname"] or _fqdn()

    @property
    def database_url(self) -> str:
        return self.sections["database"]["url"]

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "courriel.sqlite3"

    @property
    def tls_cert(self) -> Path:
        return Path(self.sections["tls"]["cert"] or self.data_dir / "tls" / "cert.pem")

    @property
    def tls_key(self) -> Path:
        return Path(self.sections["tls"]["key"] or self.data_dir / "tls" / "key.pem")

    @property
    def tls_generated(self) -> bool:
        return not self.sections["tls"]["cert"]

    @property
    def secret_key_path(self) -> Path:
        return self.data_dir / "secret.key"

    def as_dict(self, mask_secrets: bool = True) -> dict[str, dict[str, Any]]:
        shown: dict[str, dict[str, Any]] = {}
        for name, section in self.sections.items():
            shown[name] = {}
            for key, value in section.items():
                if mask_secrets and (name, key) in SECRET_KEYS and value:
                    value = "********"
                if mask_secrets and name == "database" and key == "url":
                    value = mask_url_password(value)
                shown[name][key] = value
        return shown


@cache
def _absolute(path: str) -> Path:
    """Resolved once per distinct value: on the mail path this is asked per message."""
    return Path(path).resolve()


@cache
def child(parent: Path, name: str) -> Path:
    """`parent / name`, made once: some are asked for every message."""
    return parent / name


@cache
def _fqdn() -> str:
    """The machine's name, looked up once (it may take a DNS query)."""
    return socket.getfqdn()


def mask_url_password(url: str) -> str:
    """Hide the password of a database URL (`postgresql://u:secret@h/db`)."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    if ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":********"
    return f"{scheme}://{credentials}@{host}"


SYSTEM_DATA_DIR = "/var/lib/courriel"


def default_data_dir(environ: dict[str, str] | None = None) -> str:
    """$COURRIEL_DATA; else, for root, /var/lib/courriel (the service user, which runs
    everything, could not reach a directory under root's home); else ./courriel-data."""
    environ = os.environ if environ is None else environ
    if environ.get("COURRIEL_DATA"):
        return environ["COURRIEL_DATA"]
    return SYSTEM_DATA_DIR if os.geteuid() == 0 else "courriel-data"


ACME_CHALLENGES = ("http-01", "tls-alpn-01")


def _apply_acme(sections: dict[str, Section]) -> None:
    """Port 80 is only ours when certificates are asked of an ACME CA over HTTP-01;
    TLS-ALPN-01 is answered by the panel's listener, which must then run."""
    tls = sections["tls"]
    if tls["acme_challenge"] not in ACME_CHALLENGES:
        raise ConfigError(
            f"[tls] acme_challenge: expected one of {', '.join(ACME_CHALLENGES)}, "
            f"got {tls['acme_challenge']!r}"
        )
    if not tls["acme_directory"] or tls["acme_challenge"] != "http-01":
        sections["acme"]["enabled"] = False
    alpn = tls["acme_directory"] and tls["acme_challenge"] == "tls-alpn-01"
    if alpn and not sections["web"]["enabled"]:
        raise ConfigError(
            '[tls] acme_challenge = "tls-alpn-01" is answered on the web panel\'s port: '
            '[web] enabled must be true (or use "http-01").'
        )


def _check_public_url(sections: dict[str, Section]) -> None:
    """The panel's address goes into mail sent to customers: a typo must stop the
    start, not reach them."""
    from urllib.parse import urlsplit

    url = sections["web"]["public_url"].strip()
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query:
        raise ConfigError(
            f"[web] public_url: expected an address such as https://panel.example.net/, got {url!r}"
        )


def _apply_cluster(sections: dict[str, Section]) -> None:
    """Hosting servers hand each other mail only when this one is named."""
    if not sections["general"]["server"]:
        sections["cluster"]["enabled"] = False


def _apply_mode(sections: dict[str, Section]) -> None:
    mode = sections["general"]["mode"]
    if mode not in MODES:
        raise ConfigError(f"[general] mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "edge":
        for name in EDGE_OFF:
            sections[name]["enabled"] = False
        for name in EDGE_ON:
            sections[name]["enabled"] = True


def config_path() -> Path:
    explicit = os.environ.get("COURRIEL_CONFIG")
    if explicit:
        return Path(explicit).resolve()
    return (Path(default_data_dir()) / "courriel.toml").resolve()


def load(path: Path | None = None, environ: dict[str, str] | None = None) -> Config:
    environ = dict(os.environ if environ is None else environ)
    defaults = tomllib.loads(default_config_text())
    sections = {name: Section(values) for name, values in defaults.items()}
    path = path or config_path()
    if path.exists():
        try:
            user = tomllib.loads(path.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        for name, values in user.items():
            if name not in sections or not isinstance(values, dict):
                raise ConfigError(f"{path}: unknown section [{name}]")
            for key, value in values.items():
                if key not in sections[name]:
                    raise ConfigError(f"{path}: unknown key {key!r} in [{name}]")
                expected = type(sections[name][key])
                if not isinstance(value, expected) or (
                    isinstance(value, bool) and expected is not bool
                ):
                    raise ConfigError(
                        f"{path}: [{name}] {key} should be a {expected.__name__}, got {value!r}"
                    )
                sections[name][key] = value
    overridden: set[tuple[str, str]] = set()
    for name, section in sections.items():
        for key, value in list(section.items()):
            var = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
            if var in environ:
                section[key] = _coerce(environ[var], value, var)
                overridden.add((name, key))
    _apply_mode(sections)
    _apply_acme(sections)
    _check_public_url(sections)
    _apply_cluster(sections)
    return Config(
        sections=sections,
        path=path if path.exists() else None,
        overridden=overridden,
        default_data_dir=default_data_dir(environ),
    )


_current: Config | None = None


def get_config() -> Config:
    """The configuration of this process, loaded once (`reload` reads it again)."""
    global _current
    if _current is None:
        _current = load()
    return _current


def reload(config: Config | None = None) -> Config:
    """Read the configuration again (or take `config`, loaded and checked by the
    caller); on an error the running one stays in place."""
    global _current
    _current = config or load()
    return _current
