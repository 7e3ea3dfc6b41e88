"""Debian's swaks against our SMTP and submission ports, as an admin would test."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.fixtures.platform import STRONG, Platform


def swaks(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("swaks") is None:
        pytest.fail("swaks is not installed: run scripts/setup (apt-get install swaks)")
    return subprocess.run(
        ["swaks", "--silent", "1", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def box(platform: Platform) -> Platform:
    platform.courriel(
        "user", "create", "monsite.be", "--real", "Info", "--pass", STRONG, "--extra", "info"
    )
    return platform


def test_swaks_delivers_over_starttls(box: Platform) -> None:
    done = swaks(
        "--server",
        "127.0.0.1",
        "--port",
        str(box.port("smtp")),
        "--tls",
        "--from",
        "swaks@example.org",
        "--to",
        "info@monsite.be",
        "--header",
        "Subject: from swaks",
        "--body",
        "Bonjour de swaks",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert box.wait_message("monsite0001", b"Bonjour de swaks")


def test_swaks_is_refused_for_relay_and_unknown_users(box: Platform) -> None:
    relay = swaks(
        "--server",
        "127.0.0.1",
        "--port",
        str(box.port("smtp")),
        "--from",
        "spammer@example.org",
        "--to",
        "victim@gmail.com",
    )
    assert relay.returncode != 0 and "554 5.7.1" in relay.stdout + relay.stderr
    unknown = swaks(
        "--server",
        "127.0.0.1",
        "--port",
        str(box.port("smtp")),
        "--from",
        "a@example.org",
        "--to",
        "nobody@monsite.be",
    )
    assert unknown.returncode != 0 and "550 5.1.1" in unknown.stdout + unknown.stderr


def test_swaks_submission_with_auth(box: Platform) -> None:
    done = swaks(
        "--server",
        "127.0.0.1",
        "--port",
        str(box.port("submission")),
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "monsite0001",
        "--auth-password",
        STRONG,
        "--from",
        "info@monsite.be",
        "--to",
        "friend@gmail.com",
        "--header",
        "Subject: swaks submission",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    box.sink.wait_for(1, where=lambda m: b"swaks submission" in m.content)
    bad = swaks(
        "--server",
        "127.0.0.1",
        "--port",
        str(box.port("submission")),
        "--tls",
        "--auth",
        "LOGIN",
        "--auth-user",
        "monsite0001",
        "--auth-password",
        "wrong",
        "--from",
        "info@monsite.be",
        "--to",
        "friend@gmail.com",
    )
    assert bad.returncode != 0 and "535 5.7.8" in bad.stdout + bad.stderr
