"""Production mode end to end: `courriel serve` in edge mode, started as root and
running as the service user like on a provider's machine, behind a private Postfix
and a private Dovecot made from the files `courriel edge postfix` and `courriel edge
dovecot` write. Everything listens on 127.0.0.1 and stops with the test module."""

from __future__ import annotations

import imaplib
import os
import poplib
import pwd
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.net import free_port
from tests.fixtures.platform import STRONG
from tests.fixtures.platform import insecure_context as insecure
from tests.fixtures.postfix import PostfixInstance, available
from tests.fixtures.processes import Courriel, Served, fresh_database, make_courriel, start_serve
from tests.fixtures.rspamd import PrivateRspamd
from tests.fixtures.sink import Sink
from tests.fixtures.waiting import wait_until

MAILDIRS = "mail/monsite.be/homes"
# ID (RFC 2971) is valid in every state; imaplib does not know it (another test module
# may have taught it for authenticated states only).
imaplib.Commands["ID"] = ("NONAUTH", "AUTH", "SELECTED")


def stack_available() -> bool:
    try:
        pwd.getpwnam("courriel")
    except KeyError:
        return False
    return available() and shutil.which("dovecot") is not None and os.geteuid() == 0


@dataclass
class Edge:
    courriel: Courriel
    served: Served
    serve_env: dict[str, str]
    postfix: PostfixInstance
    port: int  # Postfix's SMTP
    submission: int  # Postfix's submission
    dovecot: Path  # its dovecot.conf
    imap: int
    pop3: int
    sink: Sink  # gmail.com, where Courriel's queue sends submitted mail

    def maildir(self, login: str) -> Path:
        return self.courriel.data / MAILDIRS / login / "Maildir"

    def messages(self, login: str) -> list[bytes]:
        maildir = self.maildir(login)
        files = sorted((maildir / "new").glob("*")) + sorted((maildir / "cur").glob("*"))
        return [path.read_bytes() for path in files]

    def wait_message(self, login: str, needle: bytes) -> bytes:
        return wait_until(
            lambda: next((m for m in self.messages(login) if needle in m), None),
            f"a message with {needle!r} for {login}",
        )

    def smtp(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=60)

    def imap_login(
        self, user: str, password: str = STRONG, *, from_address: str | None = None
    ) -> imaplib.IMAP4:
        """Signed in to the edge's Dovecot (as a client at `from_address`, if given)."""
        client = imaplib.IMAP4("127.0.0.1", self.imap, timeout=60)
        client.starttls(ssl_context=insecure())
        if from_address is not None:
            client.xatom("ID", f'("x-originating-ip" "{from_address}")')
        client.login(user, password)
        return client

    def pop3_login(self, user: str, password: str = STRONG) -> poplib.POP3:
        client = poplib.POP3("127.0.0.1", self.pop3, timeout=60)
        client.stls(context=insecure())
        client.user(user)
        client.pass_(password)
        return client

    def restart_serve(self, down_for: float = 0) -> None:
        """Stop `courriel serve`, leave it down a while, start it on the same ports."""
        same_ports = self.serve_env | listener_env(self.served)  # Postfix knows these
        self.served.stop()
        time.sleep(down_for)
        self.served = start_serve(self.courriel, same_ports)


def listener_env(served: Served) -> dict[str, str]:
    """The addresses a running `courriel serve` listens on."""
    env = {}
    for section, port in served.ports.items():
        env[f"COURRIEL_{section.upper()}_BIND"] = "127.0.0.1"
        env[f"COURRIEL_{section.upper()}_PORT"] = str(port)
    return env


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _courriel(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "courriel", *args], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.fixture(scope="module")
def edge(rspamd: PrivateRspamd) -> Iterator[Edge]:
    if not stack_available():
        pytest.skip("needs root, the courriel user, Postfix and Dovecot (scripts/setup)")
    base = Path(tempfile.mkdtemp(prefix="courriel-edge-"))
    base.chmod(0o755)  # Postfix's and Dovecot's unprivileged processes go through it
    with fresh_database() as database_url:
        courriel = make_courriel(base, database_url)
        courriel.env["COURRIEL_GENERAL_USER"] = "courriel"  # as on a provider's machine
        courriel("domain", "create", "monsite.be", "--plan", "recommended")
        for name, quota in (("info", "1G"), ("small", "1M")):
            courriel(
                "user", "create", "monsite.be", "--real", name.title(), "--pass", STRONG,
                "--extra", name, "--quota", quota,
            )  # fmt: skip
        courriel("alias", "create", "monsite.be", "gone", "--bounce", "--message", "Left us")
        sink = Sink().start()
        serve_env = {
            "COURRIEL_GENERAL_MODE": "edge",
            "COURRIEL_GREYLIST_DELAY": "1h",
            "COURRIEL_QUEUE_TRANSPORT": f"gmail.com=127.0.0.1:{sink.port}",
            "COURRIEL_QUEUE_RELAY_SECURITY": "none",
            "COURRIEL_LMTP_XFORWARD_HOSTS": "127.0.0.1/32",  # Postfix, not the whole /8
            "COURRIEL_SMTP_WORKERS": "2",  # LMTP shared with a worker, whatever the cores
        }
        served = start_serve(courriel, serve_env)
        generator = courriel.env | listener_env(served)
        # Dovecot's users teach the test's rspamd (imapsieve); Courriel itself scans nothing.
        generator["COURRIEL_FILTER_RSPAMD_CONTROLLER_URL"] = rspamd.controller_url
        port, submission = free_port(), free_port()
        imap, pop3, auth = free_port(), free_port(), free_port()
        _courriel(
            generator, "edge", "postfix", "--config-dir", str(base / "postfix"),
            "--listen", f"127.0.0.1:{port}", "--submission", f"127.0.0.1:{submission}",
            "--dovecot-auth", f"inet:127.0.0.1:{auth}", "--log-file", str(base / "maillog"),
        )  # fmt: skip
        _courriel(
            generator, "edge", "dovecot", "--config-dir", str(base / "dovecot"),
            "--imap", f"127.0.0.1:{imap}", "--imaps", f"127.0.0.1:{free_port()}",
            "--pop3", f"127.0.0.1:{pop3}", "--pop3s", f"127.0.0.1:{free_port()}",
            "--auth", f"127.0.0.1:{auth}", "--log-file", str(base / "dovecot.log"),
        )  # fmt: skip
        postfix = PostfixInstance(base, base / "postfix", base / "maillog")
        # Test-only: XCLIENT from the test (outside client addresses), and nothing that
        # could ever leave this machine.
        for setting in (
            "smtpd_authorized_xclient_hosts = 127.0.0.0/8",
            "default_transport = discard:the test edge sends nothing outside",
            "relay_transport = discard:the test edge sends nothing outside",
            "smtp_dns_support_level = disabled",
        ):
            subprocess.run(["postconf", "-c", str(postfix.config), "-e", setting], check=True)
        # Test-only: the test may say which address a client comes from (IMAP ID
        # x-originating-ip), as the throttle tests need outside addresses.
        with (base / "dovecot" / "dovecot.conf").open("a") as conf:
            conf.write("login_trusted_networks = 127.0.0.0/8\n")
        check = postfix.run("check")
        assert check.returncode == 0, postfix.log_text()
        dovecot = base / "dovecot" / "dovecot.conf"
        postfix.start()
        subprocess.run(["dovecot", "-c", str(dovecot)], check=True)
        stack = Edge(
            courriel, served, serve_env, postfix, port, submission, dovecot, imap, pop3, sink
        )
        try:
            for listening in (port, submission, imap, pop3):
                wait_until(lambda listening=listening: answers(listening), "the edge to listen")
            yield stack
        finally:
            sink.stop()
            subprocess.run(["doveadm", "-c", str(dovecot), "stop"], capture_output=True)
            postfix.stop()
            stack.served.stop()  # the one running now: a test may have restarted it
            shutil.rmtree(base, ignore_errors=True)
