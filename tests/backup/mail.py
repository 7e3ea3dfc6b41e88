"""Helpers for backup tests: the manual's customer with mail in its mailbox."""

from __future__ import annotations

from pathlib import Path

from courriel.mailstore.maildir import deliver
from tests.fixtures.processes import Courriel

STRONG = "C0mpl3xP@ssW0rD?!"
INFO = "monsite.be/homes/monsite0001/Maildir"


def message(n: int, size: int = 0) -> bytes:
    head = f"From: a@b.be\r\nMessage-ID: <m{n}@b.be>\r\nSubject: message {n}\r\n\r\n".encode()
    body = f"From the start, body {n}\r\n".encode()
    return head + body + b"x" * max(0, size - len(head) - len(body) - 2) + b"\r\n"


def customer(courriel: Courriel, messages: int = 3) -> Path:
    """monsite.be with its mailbox monsite0001 (Info), holding `messages` messages in its
    INBOX and one in Sent; returns the Maildir."""
    courriel("init")
    courriel("domain", "create", "monsite.be", "--plan", "recommended", "--server", "localhost")
    courriel("user", "create", "monsite.be", "--real", "Info", "--pass", STRONG)
    maildir = courriel.data / "mail" / INFO
    for n in range(messages):
        deliver(maildir, message(n))
    deliver(maildir, message(100), folder="Sent", flags="S")
    return maildir


def live(maildir: Path) -> dict[str, bytes]:
    """Every message file of a Maildir by path (to check live mail is left alone)."""
    return {
        str(p.relative_to(maildir)): p.read_bytes()
        for p in maildir.rglob("*")
        if p.is_file() and p.parent.name in {"cur", "new"}
    }
