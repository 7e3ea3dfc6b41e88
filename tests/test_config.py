"""Configuration: defaults, the TOML file, COURRIEL_* overrides, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from courriel.config import LISTENERS, load
from courriel.errors import ConfigError


def test_every_listener_has_bind_and_port(tmp_path: Path) -> None:
    config = load(tmp_path / "none.toml", environ={})
    for section in LISTENERS:
        values = getattr(config, section)
        assert {"bind", "port", "enabled"} <= set(values)
    assert (config.web.port, config.smtp.port, config.submission.port) == (10000, 25, 587)
    assert (config.imap.port, config.imaps.port, config.pop3.port, config.pop3s.port) == (
        143,
        993,
        110,
        995,
    )
    assert config.policy.port == 10023 and config.policy.bind == "127.0.0.1"


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "courriel.toml"
    path.write_text('[web]\nport = 8443\n[general]\nlanguage = "fr"\n')
    config = load(
        path,
        environ={
            "COURRIEL_WEB_PORT": "9443",
            "COURRIEL_SMTP_ENABLED": "no",
            "COURRIEL_DATABASE_URL": "postgresql://u:secret@db/courriel",
        },
    )
    assert config.web.port == 9443 and config.general.language == "fr"
    assert config.smtp.enabled is False
    assert config.database_url == "postgresql://u:secret@db/courriel"
    shown = config.as_dict()
    assert shown["database"]["url"] == "postgresql://u:********@db/courriel"
    assert ("web", "port") in config.overridden


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[web]\nprot = 1\n", {}, "unknown key 'prot'"),
        ("[wbe]\nport = 1\n", {}, "unknown section"),
        ('[web]\nport = "x"\n', {}, "should be a int"),
        ("[web\n", {}, "not valid TOML"),
        ("", {"COURRIEL_WEB_PORT": "ten"}, "expected a whole number"),
        ("", {"COURRIEL_WEB_ENABLED": "maybe"}, "expected true or false"),
        ('[tls]\nacme_challenge = "dns-01"\n', {}, "expected one of http-01, tls-alpn-01"),
        (
            '[tls]\nacme_directory = "https://ca.example/dir"\nacme_challenge = "tls-alpn-01"\n'
            "[web]\nenabled = false\n",
            {},
            r"answered on the web panel's port: \[web\] enabled must be true",
        ),
    ],
)
def test_configuration_errors_are_clear(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "courriel.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load(path, environ=env)


@pytest.mark.parametrize(("challenge", "port_80"), [("http-01", True), ("tls-alpn-01", False)])
def test_port_80_is_ours_only_for_http_01(tmp_path: Path, challenge: str, port_80: bool) -> None:
    environ = {
        "COURRIEL_TLS_ACME_DIRECTORY": "https://ca.example/dir",
        "COURRIEL_TLS_ACME_CHALLENGE": challenge,
    }
    assert load(tmp_path / "none.toml", environ=environ).acme.enabled is port_80


def test_secret_key_is_masked(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[general]\nsecret_key = "top-secret"\n')
    assert load(path, environ={}).as_dict()["general"]["secret_key"] == "********"
