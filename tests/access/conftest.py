"""IMAP and POP3 servers run in this process (on their own event loop in a thread) for
fast protocol tests with real clients over real loopback sockets; the end-to-end tests
use `courriel serve` instead (fixture `served`)."""

from __future__ import annotations

import asyncio
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from courriel.access.auth import AccessSettings
from courriel.access.imap.session import handle as imap_handle
from courriel.access.listener import Listener, Stream
from courriel.access.pop3.session import handle as pop3_handle
from courriel.accounts.throttle import throttle
from courriel.config import get_config
from courriel.mailstore.maildir import deliver
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.processes import Courriel, Served, start_serve

PASSWORD = "Tr3sS3cr3t-Mot2Passe"


def message(subject: str = "Bonjour", body: str = "Hello from the test.", **headers: str) -> bytes:
    lines = [
        "From: Frederic <frederic@gmail.com>",
        "To: info@monsite.be",
        f"Subject: {subject}",
        "Date: Thu, 09 Sep 2010 10:00:00 +0200",
        f"Message-ID: <{abs(hash((subject, body)))}@gmail.com>",
        *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode()


@dataclass
class Access:
    ports: dict[str, int]
    maildir: Path
    login: str
    password: str
    address: str
    cafile: str
    loop: asyncio.AbstractEventLoop

    def deliver(self, data: bytes, folder: str = "") -> None:
        from courriel.mailstore.events import events

        deliver(self.maildir, data, folder=folder, durable=False)
        events.notify(self.maildir)

    def tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cafile)
        context.check_hostname = False
        return context


def _settings(plaintext: bool) -> AccessSettings:
    config = get_config()
    base = AccessSettings.from_config(config)
    return AccessSettings(**{**base.__dict__, "plaintext_on_loopback": plaintext})


def start_listeners(
    settings: AccessSettings,
) -> tuple[dict[str, int], asyncio.AbstractEventLoop, threading.Thread, list[Listener]]:
    from courriel.bootstrap import initialize  # noqa: F401  (certificate helpers)
    from courriel.tls import ensure_certificate, server_context

    config = get_config()
    ensure_certificate(config)
    context = server_context(config)
    loop = asyncio.new_event_loop()
    listeners: list[Listener] = []
    ports: dict[str, int] = {}
    import socket

    for section, handler, implicit in (
        ("imap", imap_handle, False),
        ("imaps", imap_handle, True),
        ("pop3", pop3_handle, False),
        ("pop3s", pop3_handle, True),
    ):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        ports[section] = sock.getsockname()[1]

        async def run(stream: Stream, handler=handler) -> None:  # type: ignore[no-untyped-def]
            await handler(stream, settings)

        listeners.append(
            Listener(
                section,
                sock,
                run,
                implicit_tls=context if implicit else None,
                starttls=None if implicit else context,
                max_per_ip=50,
                scheme=section,
                busy_reply=b"-ERR busy\r\n",
            )
        )
    ready = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)

        async def begin() -> None:
            for listener in listeners:
                await listener.start()
            ready.set()

        loop.run_until_complete(begin())
        loop.run_forever()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(10)
    return ports, loop, thread, listeners


def stop_listeners(
    loop: asyncio.AbstractEventLoop, thread: threading.Thread, listeners: list[Listener]
) -> None:
    async def end() -> None:
        for listener in listeners:
            await listener.stop()

    asyncio.run_coroutine_threadsafe(end(), loop).result(20)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture
def mailbox_user(transactional_db: None, monsite: Customer) -> tuple[str, str, Path]:
    from courriel.accounts.services.mailboxes import create_mailbox
    from courriel.mailstore import index
    from courriel.mailstore.layout import create_maildir

    index._open.clear()
    created = create_mailbox(
        monsite.actor,
        monsite.domain,
        login="monsite0001",
        real_name="Info",
        password=PASSWORD,
        addresses=["info"],
    )
    mailbox = created.mailbox
    # A Maildir of its own per test: parallel test workers share the data directory.
    mailbox.maildir = f"tests/{uuid.uuid4().hex}/Maildir"
    mailbox.save(update_fields=["maildir"])
    create_maildir(mailbox.maildir_path(get_config().mail_root))
    return mailbox.login, "monsite0001@monsite.be", mailbox.maildir_path(get_config().mail_root)


def _access(mailbox_user: tuple[str, str, Path], plaintext: bool) -> Iterator[Access]:
    throttle.reset()
    login, address, maildir = mailbox_user
    ports, loop, thread, listeners = start_listeners(_settings(plaintext))
    try:
        yield Access(ports, maildir, login, PASSWORD, address, str(get_config().tls_cert), loop)
    finally:
        stop_listeners(loop, thread, listeners)
        throttle.reset()


@pytest.fixture
def access(mailbox_user: tuple[str, str, Path]) -> Iterator[Access]:
    """Servers that accept passwords in clear text on loopback (like a local tool)."""
    yield from _access(mailbox_user, True)


@pytest.fixture
def strict_access(mailbox_user: tuple[str, str, Path]) -> Iterator[Access]:
    """Servers with the default rule: passwords only over TLS."""
    yield from _access(mailbox_user, False)


SERVE_PASSWORD = "C0mpl3xP@ssW0rD?!"
SERVE_ENV = {"COURRIEL_ACCESS_PLAINTEXT_ON_LOOPBACK": "true"}


@dataclass
class Service:
    """`courriel serve` (a real process) with one mailbox, for real clients."""

    courriel: Courriel
    served: Served
    maildir: Path
    cert: Path
    login: str = "monsite0001"
    password: str = SERVE_PASSWORD

    @property
    def ports(self) -> dict[str, int]:
        return self.served.ports

    def deliver(self, data: bytes, folder: str = "") -> None:
        deliver(self.maildir, data, folder=folder, durable=False)

    def restart(self) -> None:
        """Stop the process and start a new one (new ports), as after a reboot."""
        self.served.stop()
        self.served = start_serve(self.courriel, SERVE_ENV)


@pytest.fixture
def service(courriel: Courriel) -> Iterator[Service]:
    courriel("server", "add", "maximusconfessor", "maximusconfessor.all2all.org")
    courriel(
        "domain", "create", "monsite.be", "--plan", "recommended", "--server", "maximusconfessor"
    )
    courriel(
        "user",
        "create",
        "monsite.be",
        "--real",
        "Info",
        "--pass",
        SERVE_PASSWORD,
        "--extra",
        "info@monsite.be",
    )
    served = start_serve(courriel, SERVE_ENV)
    service = None
    try:
        maildir = courriel.data / "mail" / "monsite.be" / "homes" / "monsite0001" / "Maildir"
        assert (maildir / "cur").is_dir()
        assert any(line.startswith("imaps: imaps://") for line in served.output)
        service = Service(courriel, served, maildir, courriel.data / "tls" / "cert.pem")
        yield service
    finally:
        (service.served if service else served).stop()


__all__ = ["STRONG", "Access", "Service", "message"]
