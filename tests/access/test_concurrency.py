"""Ten clients on one folder for 30 seconds, each selecting, fetching, storing flags,
expunging and appending as a busy family of devices would: not a single NO or BAD
(issue 17 counted 466 `NO [EXPUNGEISSUED]` in such a run), and every client's idea of
the folder stays consistent with the server's."""

from __future__ import annotations

import imaplib
import random
import threading
import time

import pytest

from tests.access.conftest import Service, message

pytestmark = pytest.mark.slow
CLIENTS = 10
DURATION = 30.0


class Client:
    """One imaplib session that keeps count of the folder as the server tells it."""

    def __init__(self, service: Service, seed: int) -> None:
        self.imap = imaplib.IMAP4("127.0.0.1", service.ports["imap"], timeout=60)
        self.imap.login(service.login, service.password)
        self.random = random.Random(seed)
        self.exists = 0
        self.commands = 0
        self.errors: list[str] = []

    def command(self, name: str, *args: str) -> list[bytes]:
        self.commands += 1
        try:
            if name == "SELECT":  # through imaplib's select, which tracks the state
                typ, data = self.imap.select(*args)
            else:
                typ, data = self.imap._simple_command(name, *args)
        except imaplib.IMAP4.error as error:  # BAD (or BYE)
            self.errors.append(f"{name} {' '.join(args)}: {error}")
            return []
        if typ != "OK":
            self.errors.append(f"{name} {' '.join(args)}: {typ} {data}")
        responses = self.imap.untagged_responses
        expunged = responses.pop("EXPUNGE", [])
        exists = responses.pop("EXISTS", [])
        if name == "SELECT" and typ == "OK":
            self.exists = int(data[-1])  # imaplib took the EXISTS answer for itself
        elif exists:
            self.exists = int(exists[-1])
        else:
            self.exists -= len(expunged)
        for key in ("FETCH", "SEARCH", "RECENT", "FLAGS", "OK"):
            responses.pop(key, None)
        return data or []

    def step(self) -> None:
        r = self.random
        choice = r.random()
        if choice < 0.05 or self.exists == 0:
            self.command("SELECT", "INBOX")
        elif choice < 0.30:
            self.command("FETCH", f"1:{self.exists}", "(UID FLAGS)")
        elif choice < 0.45:
            n = r.randint(1, self.exists)
            self.command("FETCH", str(n), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.SIZE)")
        elif choice < 0.60:
            n = r.randint(1, self.exists)
            self.command("STORE", str(n), "+FLAGS", "(\\Seen)")
        elif choice < 0.70:
            n = r.randint(1, self.exists)
            self.command("STORE", f"{n}:{min(self.exists, n + 2)}", "+FLAGS.SILENT", "(\\Deleted)")
        elif choice < 0.78:
            self.command("EXPUNGE")
        elif choice < 0.90:
            data = message(f"Concurrent {r.random()}").decode()
            self.imap.literal = data.encode()
            self.command("APPEND", "INBOX", "()")
            self.imap.literal = None
        elif choice < 0.95:
            self.command("UID", "FETCH", "1:*", "(FLAGS)")
        else:
            self.command("NOOP")


def test_ten_clients_for_thirty_seconds_get_no_error(service: Service) -> None:
    for index in range(50):
        service.deliver(message(f"Seed {index}"))
    clients = [Client(service, seed) for seed in range(CLIENTS)]
    deadline = time.monotonic() + DURATION
    failures: list[BaseException] = []

    def work(client: Client) -> None:
        try:
            client.command("SELECT", "INBOX")
            while time.monotonic() < deadline:
                client.step()
        except BaseException as error:  # a dropped connection, a protocol error
            failures.append(error)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DURATION + 120)
    assert not failures, failures
    errors = [e for c in clients for e in c.errors]
    commands = sum(c.commands for c in clients)
    assert not errors, f"{len(errors)} error replies in {commands} commands: {errors[:10]}"
    assert commands > 500, commands
    print(f"{commands} commands in {DURATION:.0f} s: {commands / DURATION:.0f}/s")
    # Every client agrees with the server on what the folder holds now.
    for client in clients:
        client.command("NOOP")
        typ, data = client.imap.uid("SEARCH", "ALL")
        assert typ == "OK" and len(data[0].split()) == client.exists
        client.imap.logout()
