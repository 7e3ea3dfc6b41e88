"""Certificates by ACME on a machine whose port 80 is taken: TLS-ALPN-01 (RFC 8737)
answered on the web panel's TLS port, against Debian's pebble validating on that
port (its `tlsPort`) with a DNS server of the test's own. Port 80 belongs to another
web server that knows nothing of ACME, so HTTP-01 cannot succeed."""

from __future__ import annotations

import contextlib
import email
import http.server
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from pathlib import Path

import pytest
from cryptography import x509

from tests.fixtures.net import free_port
from tests.fixtures.nsd import PrivateNSD
from tests.fixtures.pebble import Pebble, ask_pebble
from tests.fixtures.processes import Courriel, Served, start_serve
from tests.fixtures.sink import Sink
from tests.fixtures.waiting import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("pebble") is None, reason="pebble (scripts/setup)"),
]

HOST = "courriel.test"
ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")


class _NotOurs(http.server.BaseHTTPRequestHandler):
    """Another web server on "port 80": 404 for everything, ACME paths included."""

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Seen:
    """What a TLS client saw on the panel's port."""

    certificate: x509.Certificate | None
    alpn: str | None
    status: str | None  # the panel's HTTP status line; None: closed before any answer

    @property
    def challenge(self) -> bool:
        if self.certificate is None:
            return False
        ids = [extension.oid for extension in self.certificate.extensions]
        return ACME_IDENTIFIER in ids

    @property
    def issuer(self) -> str:
        return self.certificate.issuer.rfc4514_string() if self.certificate else ""


def visit(port: int, name: str | None, protocols: list[str] | None = None) -> Seen:
    """A TLS handshake with `name` as SNI (and `protocols` as ALPN), then, if the
    connection is still open, one HTTP request for the panel's login page."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if protocols:
        context.set_alpn_protocols(protocols)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        try:
            tls = context.wrap_socket(raw, server_hostname=name)
        except (ssl.SSLError, ConnectionError):
            return Seen(None, None, None)
        with tls:
            der = tls.getpeercert(binary_form=True)
            certificate = x509.load_der_x509_certificate(der) if der else None
            alpn = tls.selected_alpn_protocol()
            try:
                tls.sendall(f"GET /login/ HTTP/1.1\r\nHost: {name or '127.0.0.1'}\r\n\r\n".encode())
                first = tls.recv(4096).split(b"\r\n", 1)[0].decode("ascii", "replace")
            except (ssl.SSLError, OSError):
                first = ""
            return Seen(certificate, alpn, first or None)


@dataclass
class Alpn:
    courriel: Courriel
    served: Served
    pebble: Pebble
    sink: Sink
    web_port: int

    def held(self) -> dict[str, list[str]]:
        shown = self.courriel("tls", "status", "--json").json
        return {c["name"]: c["names"] for c in shown["certificates"]}

    def failures(self) -> list[dict[str, object]]:
        shown = self.courriel("tls", "status", "--json").json
        return shown["last_round"].get("failures", [])

    def wait_issued(self, wanted: dict[str, list[str]]) -> None:
        def done() -> bool:
            assert not self.failures(), self.failures()
            return self.held() == wanted

        wait_until(done, "the certificates", timeout=120, interval=0.5)


@pytest.fixture
def alpn(
    courriel: Courriel, nsd: PrivateNSD, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Alpn]:
    """`courriel serve` with TLS-ALPN-01, pebble validating on the panel's port (or,
    with the parameter "elsewhere", on a port where nothing answers: the provider's
    443 does not lead to the panel)."""
    nsd.zone("courriel.test", ["@ A 127.0.0.1"])
    nsd.zone("monsite.test", ["mail A 127.0.0.1", "autoconfig A 127.0.0.1"])
    nsd.start()
    with contextlib.ExitStack() as running:  # stopped in the reverse order
        port_80 = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _NotOurs)
        running.callback(port_80.server_close)
        threading.Thread(target=port_80.serve_forever, daemon=True).start()
        running.callback(port_80.shutdown)
        web_port = free_port()
        elsewhere = getattr(request, "param", None) == "elsewhere"
        validated_on = free_port() if elsewhere else web_port
        pebble = Pebble(tmp_path / "pebble", nsd.nameserver, port_80.server_port, validated_on)
        running.callback(pebble.stop)
        pebble.start()
        sink = Sink().start()
        running.callback(sink.stop)
        ask_pebble(courriel, pebble, HOST, ["monsite.test"], sink.port, "tls-alpn-01")
        served = start_serve(courriel, {"COURRIEL_WEB_PORT": str(web_port)})
        running.callback(served.stop)
        yield Alpn(courriel, served, pebble, sink, web_port)


WANTED = {HOST: [HOST], "mail.monsite.test": ["mail.monsite.test", "autoconfig.monsite.test"]}


def test_issued_over_tls_alpn_on_the_panel_port_which_keeps_answering(alpn: Alpn) -> None:
    # The panel answers while the CA validates (no name: never a challenge's).
    answers: list[Seen] = []
    stop = threading.Event()

    def keep_visiting() -> None:
        while not stop.is_set():
            answers.append(visit(alpn.web_port, None, ["http/1.1"]))

    visitor = threading.Thread(target=keep_visiting)
    visitor.start()
    try:
        alpn.wait_issued(WANTED)
    finally:
        stop.set()
        visitor.join()
    assert answers and all(s.status and s.status.startswith("HTTP/1.1 ") for s in answers)
    assert not any(s.challenge or s.alpn for s in answers)

    for name in (HOST, "mail.monsite.test", "autoconfig.monsite.test"):
        wait_until(lambda name=name: "Pebble" in visit(alpn.web_port, name).issuer,
                   f"the certificate of {name} served")  # fmt: skip
        seen = visit(alpn.web_port, name)
        assert seen.status and seen.status.startswith("HTTP/1.1 "), seen
        shown = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{alpn.web_port}",
             "-servername", name],
            input="", capture_output=True, text=True, timeout=60, check=False,
        ).stdout  # fmt: skip
        pem = "-----BEGIN CERTIFICATE-----" + shown.split("-----BEGIN CERTIFICATE-----")[1]
        served = x509.load_pem_x509_certificate(pem.encode())
        names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert name in names.get_values_for_type(x509.DNSName), shown
        assert "Pebble" in served.issuer.rfc4514_string(), shown
    # Port 80 was never ours: nothing of Courriel listens for HTTP-01.
    assert "HTTP-01" not in "".join(alpn.served.output)


def _pending(alpn: Alpn, name: str, key_authorization: str | None) -> None:
    """What a renewal round does around `answer_challenge` (here in another process
    than the server, like `courriel tls renew`): the challenge begins, or ends."""
    code = (
        f"alpn.begin(get_config(), {name!r}, {key_authorization!r})"
        if key_authorization
        else f"alpn.end(get_config(), {name!r})"
    )
    code = "from courriel.acme import alpn; from courriel.config import get_config; " + code
    subprocess.run([sys.executable, "-c", code], env=alpn.courriel.env, check=True, timeout=60)


def test_challenge_certificate_only_for_acme_tls_clients_while_pending(alpn: Alpn) -> None:
    alpn.wait_issued(WANTED)
    name = "mail.monsite.test"
    wait_until(lambda: "Pebble" in visit(alpn.web_port, name).issuer, "the certificate served")

    # No challenge pending: a client asking for acme-tls/1 gets the name's ordinary
    # certificate, no protocol, and then the panel (the panel's contexts speak no ALPN).
    seen = visit(alpn.web_port, name, ["acme-tls/1"])
    assert not seen.challenge and seen.alpn is None and "Pebble" in seen.issuer, seen
    assert seen.status and seen.status.startswith("HTTP/1.1 "), seen

    _pending(alpn, name, "token.thumbprint")
    try:
        # The CA: the challenge's certificate, acme-tls/1, then closed (RFC 8737 s. 3).
        seen = visit(alpn.web_port, name, ["acme-tls/1"])
        assert seen.challenge and seen.alpn == "acme-tls/1" and seen.status is None, seen
        extension = seen.certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER)
        assert extension.critical
        [dns_name] = seen.certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.DNSName)
        assert dns_name == name
        # A browser (no ALPN, or h2/http1.1) for that name meanwhile: closed, never
        # a panel session on the challenge's certificate.
        for protocols in (None, ["h2", "http/1.1"]):
            seen = visit(alpn.web_port, name, protocols)
            assert seen.status is None and seen.alpn is None, seen
        # Other names, and no name, are not disturbed.
        for other in ("autoconfig.monsite.test", HOST, None):
            seen = visit(alpn.web_port, other, ["acme-tls/1"])
            assert not seen.challenge and seen.alpn is None, seen
            assert seen.status and seen.status.startswith("HTTP/1.1 "), seen
        # The mail ports never answer challenges.
        ports = alpn.served.ports
        seen = visit(ports["imaps"], name, ["acme-tls/1"])
        assert not seen.challenge and "Pebble" in seen.issuer, seen
    finally:
        _pending(alpn, name, None)

    seen = visit(alpn.web_port, name)
    assert not seen.challenge and "Pebble" in seen.issuer, seen
    assert seen.status and seen.status.startswith("HTTP/1.1 "), seen


@pytest.mark.parametrize("alpn", ["elsewhere"], indirect=True)
def test_failed_validation_is_reported_and_the_fallback_serves(alpn: Alpn) -> None:
    failures = wait_until(alpn.failures, "the failed round", timeout=120, interval=0.5)
    assert {tuple(f["names"]) for f in failures} == {
        (HOST,),
        ("mail.monsite.test", "autoconfig.monsite.test"),
    }
    assert all("tls-alpn-01 validation failed" in f["error"] for f in failures), failures
    shown = alpn.courriel("tls", "status")
    assert f"failed: {HOST}: {HOST}: tls-alpn-01 validation failed: " in shown.err, shown.err
    [report] = alpn.sink.wait_for(1, where=lambda m: m.recipients == ["ops@provider.example"])
    assert report.header("Subject") == "Certificate renewal failed"
    body = email.message_from_bytes(report.content, policy=policy.default).get_body()
    assert body is not None and "tls-alpn-01 validation failed" in body.get_content()
    # Nothing issued, no challenge left pending: the fallback certificate and the
    # panel, even for a client asking for acme-tls/1.
    assert alpn.held() == {}
    for name in (HOST, "mail.monsite.test"):
        seen = visit(alpn.web_port, name, ["acme-tls/1"])
        assert not seen.challenge and seen.alpn is None and "Pebble" not in seen.issuer, seen
        assert seen.status and seen.status.startswith("HTTP/1.1 "), seen
