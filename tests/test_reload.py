"""SIGHUP: `courriel serve` reads its certificate and configuration again without
dropping a connection; a broken new certificate is refused and the old one stays."""

from __future__ import annotations

import imaplib
import signal
import smtplib
import socket
import ssl

from courriel.tls import generate_self_signed
from tests.fixtures.processes import Courriel, start_serve
from tests.fixtures.waiting import wait_until


def served_certificate(port: int, starttls: str | None = None) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if starttls == "smtp":
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.starttls(context=context)
            return client.sock.getpeercert(binary_form=True)
    if starttls == "imap":
        client = imaplib.IMAP4("127.0.0.1", port, timeout=60)
        client.starttls(ssl_context=context)
        der = client.sock.getpeercert(binary_form=True)
        client.logout()
        return der
    with (
        socket.create_connection(("127.0.0.1", port), timeout=60) as raw,
        context.wrap_socket(raw) as tls,
    ):
        return tls.getpeercert(binary_form=True)


def every_listener(served) -> set[bytes]:
    return {
        served_certificate(served.ports["web"]),
        served_certificate(served.ports["imaps"]),
        served_certificate(served.ports["pop3s"]),
        # Several connections: the kernel spreads port 25 between the SMTP processes.
        *(served_certificate(served.ports["smtp"], "smtp") for _ in range(6)),
        served_certificate(served.ports["submission"], "smtp"),
        served_certificate(served.ports["imap"], "imap"),
    }


def test_sighup_serves_the_new_certificate_and_keeps_connections(courriel: Courriel) -> None:
    served = start_serve(courriel)
    try:
        tls = courriel.data / "tls"
        [before] = every_listener(served)
        open_session = imaplib.IMAP4("127.0.0.1", served.ports["imap"], timeout=60)
        generate_self_signed(tls / "cert.pem", tls / "key.pem", "renewed.example.org")
        served.reload()  # the main process and each SMTP worker
        after = every_listener(served)
        assert len(after) == 1 and after != {before}, "every listener, SMTP workers too"
        assert open_session.noop()[0] == "OK"  # the connection made before goes on
        open_session.logout()

        # A key that does not match: refused, the running certificate stays.
        (tls / "key.pem").write_bytes((tls / "key.pem").read_bytes().replace(b"A", b"B", 5))
        # The main process refuses it and passes no signal on: the workers keep theirs.
        served.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "configuration not reloaded" in "".join(served.output), "the refusal")
        assert every_listener(served) == after
        assert served.proc.poll() is None
    finally:
        assert served.stop() == 0
