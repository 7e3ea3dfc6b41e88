"""`courriel serve` on an empty machine: data directory, database, plans, certificate,
admin password printed once, and the panel over HTTPS."""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import subprocess
import sys
import urllib.request

from tests.fixtures.processes import Courriel, start_serve


def fetch(url: str, cafile: str) -> tuple[int, str, dict[str, str]]:
    context = ssl.create_default_context(cafile=cafile)
    context.check_hostname = False  # the certificate names the host, we use 127.0.0.1
    with urllib.request.urlopen(url, context=context, timeout=60) as response:
        return response.status, response.read().decode(), dict(response.headers)


def test_first_start_creates_everything_and_serves_https(courriel: Courriel) -> None:
    served = start_serve(courriel)
    try:
        log = "".join(served.output)
        match = re.search(r"Provider admin password: (\S+)", log)
        assert match and len(match.group(1)) >= 20
        data = courriel.data
        assert (data / "tls" / "cert.pem").exists() and (data / "tls" / "key.pem").exists()
        assert oct((data / "tls" / "key.pem").stat().st_mode & 0o777) == "0o600"
        if not courriel.env.get("COURRIEL_DATABASE_URL"):
            assert (data / "courriel.sqlite3").exists()
        status, body, headers = fetch(served.web_url + "/login/", str(data / "tls" / "cert.pem"))
        assert status == 200 and 'name="password"' in body
        assert "Remember login permanently?" in body
        assert headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "max-age" in headers["Strict-Transport-Security"]
        # Plain HTTP on the TLS port gets nowhere.
        with socket.create_connection(("127.0.0.1", served.ports["web"]), timeout=60) as sock:
            sock.sendall(b"GET /login/ HTTP/1.0\r\n\r\n")
            assert b"Remember login" not in sock.recv(4096)
    finally:
        assert served.stop() == 0
    plans = courriel("plan", "list", "--json").json
    assert [p["name"] for p in plans] == ["simple", "recommended", "large"]
    # A second start keeps the admin account: the password is printed only once.
    again = start_serve(courriel)
    try:
        assert "Provider admin password" not in "".join(again.output)
    finally:
        again.stop()


def serve_once(courriel: Courriel, **env: str) -> subprocess.CompletedProcess[str]:
    """`courriel serve` expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "courriel", "serve"],
        env=dict(courriel.env, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_port_in_use_is_a_clear_error(courriel: Courriel) -> None:
    courriel("init")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = serve_once(courriel, COURRIEL_WEB_BIND="127.0.0.1", COURRIEL_WEB_PORT=str(port))
    assert result.returncode == 78
    assert f"Cannot listen on 127.0.0.1:{port} for web" in result.stderr
    assert "COURRIEL_WEB_PORT" in result.stderr and "Traceback" not in result.stderr


def test_smtp_port_shared_by_workers_is_never_shared_with_another_program(
    courriel: Courriel,
) -> None:
    """The SMTP workers share port 25 through SO_REUSEPORT; another program that set
    it too must not silently get half of the connections."""
    courriel("init")
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = serve_once(
            courriel,
            COURRIEL_SMTP_BIND="127.0.0.1",
            COURRIEL_SMTP_PORT=str(port),
            COURRIEL_SMTP_WORKERS="2",
            COURRIEL_WEB_ENABLED="false",
        )
    assert result.returncode == 78
    assert f"Cannot listen on 127.0.0.1:{port} for smtp" in result.stderr


def test_upgrade_applies_migrations_and_refuses_a_newer_database(courriel: Courriel) -> None:
    first = courriel("upgrade", "--check", "--json").json
    assert first["pending"], "a new database has every migration to apply"
    assert courriel("upgrade", "--json").json["applied"] == first["pending"]
    assert "up to date" in courriel("upgrade").out

    # A newer Courriel has upgraded this database: nothing of this version touches it.
    newer = (
        "INSERT INTO django_migrations (app, name, applied) "
        "VALUES ('accounts', '9999_from_the_future', CURRENT_TIMESTAMP)"
    )
    url = courriel.env["COURRIEL_DATABASE_URL"]
    if url:
        import psycopg

        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(newer)
    else:
        import sqlite3

        with sqlite3.connect(courriel.data / "courriel.sqlite3") as connection:
            connection.execute(newer)
    for command in (("upgrade",), ("domain", "list"), ("serve",)):
        refused = courriel(*command, ok=False)
        assert refused.code == 78, refused.err
        assert "upgraded by a newer version of Courriel (accounts.9999_from_the_future)" in (
            refused.err
        )


def test_the_event_loop_is_chosen_in_the_configuration(courriel: Courriel) -> None:
    """uvloop by default; Python's own loop on request (every listener works on both);
    anything else is a clear configuration error."""
    courriel("init")
    result = serve_once(courriel, COURRIEL_GENERAL_EVENT_LOOP="tokio")
    assert result.returncode == 78, result.stderr
    assert "event_loop" in result.stderr and "Traceback" not in result.stderr
    courriel.env["COURRIEL_GENERAL_EVENT_LOOP"] = "asyncio"
    served = start_serve(courriel)
    try:
        with smtplib.SMTP("127.0.0.1", served.ports["smtp"], timeout=60) as client:
            assert client.ehlo()[0] == 250
    finally:
        assert served.stop() == 0
