"""Certificates by ACME against Debian's pebble (Let's Encrypt's test CA), with a DNS
server of the test's own: issued for the names that resolve to this server, served
by SNI on every port (checked with `openssl s_client -servername`), renewed, and
when the CA is down the running certificates stay and the provider is told."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.net import free_port
from tests.fixtures.nsd import PrivateNSD
from tests.fixtures.pebble import Pebble, ask_pebble
from tests.fixtures.processes import RELOADED, Courriel, Served, start_serve
from tests.fixtures.sink import Sink
from tests.fixtures.waiting import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("pebble") is None, reason="pebble (scripts/setup)"),
]

HOST = "courriel.test"


@dataclass
class Acme:
    courriel: Courriel
    served: Served
    pebble: Pebble
    sink: Sink
    http_port: int  # our [acme] listener, where pebble's validation connects

    def certificate(self, port: int, name: str | None, starttls: str | None = None) -> str:
        """Subject, issuer and serial that `openssl s_client` sees for `name` (SNI)."""
        command = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}"]
        command += ["-servername", name] if name else ["-noservername"]
        if starttls:
            command += ["-starttls", starttls]
        shown = subprocess.run(
            command, input="", capture_output=True, text=True, timeout=60, check=False
        ).stdout
        certificate = shown.split("-----BEGIN CERTIFICATE-----", 1)[1]
        pem = "-----BEGIN CERTIFICATE-----" + certificate.split("-----END CERTIFICATE-----")[0]
        pem += "-----END CERTIFICATE-----\n"
        return subprocess.run(
            ["openssl", "x509", "-noout", "-subject", "-issuer", "-serial",
             "-ext", "subjectAltName"],
            input=pem, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip


@pytest.fixture
def acme(courriel: Courriel, nsd: PrivateNSD, tmp_path: Path) -> Iterator[Acme]:
    nsd.zone("courriel.test", ["@ A 127.0.0.1"])
    nsd.zone("monsite.test", ["mail A 127.0.0.1", "autoconfig A 127.0.0.1"])
    nsd.zone("elsewhere.test", ["mail A 192.0.2.1"])  # another machine's
    nsd.start()
    http_port = free_port()
    pebble = Pebble(tmp_path / "pebble", nsd.nameserver, http_port).start()
    sink = Sink().start()
    ask_pebble(courriel, pebble, HOST, ["monsite.test", "elsewhere.test"], sink.port)
    served = start_serve(courriel, {"COURRIEL_ACME_PORT": str(http_port)})
    try:
        yield Acme(courriel, served, pebble, sink, http_port)
    finally:
        served.stop()
        pebble.stop()
        sink.stop()


def held(acme: Acme) -> dict[str, list[str]]:
    shown = acme.courriel("tls", "status", "--json").json
    return {c["name"]: c["names"] for c in shown["certificates"]}


def test_issue_serve_by_sni_renew_and_survive_the_ca_going_down(acme: Acme) -> None:
    wanted = {HOST: [HOST], "mail.monsite.test": ["mail.monsite.test", "autoconfig.monsite.test"]}
    wait_until(lambda: held(acme) == wanted, "the certificates", timeout=120)
    served = acme.served
    ports = served.ports
    wait_until(lambda: "Pebble" in acme.certificate(ports["imaps"], "mail.monsite.test")
               and "Pebble" in acme.certificate(ports["imap"], HOST, "imap"),
               "the new certificates served")  # fmt: skip
    # The SMTP workers (port 25) read them a moment after the main process: each
    # reload (a SIGHUP per round that issued something) logged by every process.
    wait_until(lambda: (n := served.logged(RELOADED)) > 0 and n % served.processes == 0,
               "every process's reload")  # fmt: skip
    for port, name, starttls in (
        (ports["imaps"], "mail.monsite.test", None),
        (ports["pop3s"], "mail.monsite.test", None),
        (ports["web"], "autoconfig.monsite.test", None),
        (ports["smtp"], "mail.monsite.test", "smtp"),
        (ports["submission"], "mail.monsite.test", "smtp"),
        (ports["imap"], HOST, "imap"),
    ):
        seen = acme.certificate(port, name, starttls)
        assert f"DNS:{name}" in seen, (port, seen)
        assert "Pebble" in seen, (port, seen)
    # No name, or a name that is not ours: the self-signed fallback.
    for name in (None, "mail.elsewhere.test"):
        seen = acme.certificate(ports["imaps"], name)
        assert "Pebble" not in seen and HOST in seen, seen

    # Renewal: a new certificate, served at once.
    before = acme.certificate(ports["imaps"], "mail.monsite.test")
    acme.courriel("tls", "renew", "--force")
    wait_until(lambda: acme.certificate(ports["imaps"], "mail.monsite.test") != before,
               "the renewed certificate served")  # fmt: skip

    # The CA goes away: the renewal fails clearly, the certificates in place stay,
    # and the provider hears of it.
    acme.pebble.stop()
    current = acme.certificate(ports["imaps"], "mail.monsite.test")
    failed = acme.courriel("tls", "renew", "--force", ok=False)
    assert failed.code == 75 and "cannot reach the CA" in failed.err, failed.err
    assert acme.certificate(ports["imaps"], "mail.monsite.test") == current
    [report] = acme.sink.wait_for(1, where=lambda m: m.recipients == ["ops@provider.example"])
    assert report.header("Subject") == "Certificate renewal failed"
    assert acme.served.proc.poll() is None


def test_port_80_answers_challenges_only(acme: Acme) -> None:
    import urllib.error
    import urllib.request

    base = f"http://127.0.0.1:{acme.http_port}"
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{base}/.well-known/acme-challenge/no-such-token", timeout=30)
    assert missing.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as traversal:
        urllib.request.urlopen(f"{base}/.well-known/acme-challenge/..%2F..%2Fkey.pem", timeout=30)
    assert traversal.value.code == 404

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as moved:
        opener.open(f"{base}/anything", timeout=30)
    assert moved.value.code == 301
    assert moved.value.headers["Location"].startswith("https://127.0.0.1:")
