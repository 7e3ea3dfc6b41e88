"""`courriel greylist ...` in-process: every command, its --json, and clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.accounts import Customer
from tests.fixtures.processes import InProcess
from tests.greylist.conftest import Clock, EngineFactory, ask

pytestmark = pytest.mark.django_db


def test_status_list_and_lookup(
    cli: InProcess, make_engine: EngineFactory, clock: Clock, monsite: Customer
) -> None:
    engine = make_engine()
    ask(engine, sender="alice@example.org", recipient="info@monsite.be")
    engine.flush()
    text = cli("greylist", "status").out
    assert "Greylisting           on" in text
    assert "Delay                 15m (retry window 2d, trusted triplets kept 35d unseen)" in text
    status = cli("greylist", "status", "--json").json
    assert status["total"]["deferred"] == 1 and status["pending"] in (0, 1)
    listing = cli("greylist", "list", "--json").json
    assert listing[0]["sender"] == "alice@example.org"
    assert "alice@example.org" in cli("greylist", "list", "--state", "all").out
    found = cli("greylist", "lookup", "--sender", "alice@example.org", "--json").json
    assert found["triplets"][0]["recipient"] == "info@monsite.be"
    text = cli("greylist", "lookup", "--recipient", "info@monsite.be").out
    assert "alice@example.org -> info@monsite.be from 192.0.2.10" in text
    error = cli("greylist", "lookup", ok=False)
    assert error.code == 65 and "Give a sender, a recipient or a client IP" in error.err


def test_whitelist_commands(cli: InProcess, tmp_path: Path) -> None:
    assert (
        "Added 192.0.2.0/24"
        in cli("greylist", "whitelist", "add", "client", "192.0.2.1/24", "--comment", "partner").out
    )
    dup = cli("greylist", "whitelist", "add", "client", "192.0.2.0/24", ok=False)
    assert dup.code == 65 and "already in the client whitelist" in dup.err
    bad = cli("greylist", "whitelist", "add", "client", "300.1.2.3/8", ok=False)
    assert bad.code == 65 and "not a valid IP address or network" in bad.err
    kind = cli("greylist", "whitelist", "add", "colour", "red", ok=False)
    assert kind.code == 2  # click's usage error
    listed = cli("greylist", "whitelist", "list", "--no-default", "--json").json
    assert [(e["kind"], e["value"], e["comment"]) for e in listed] == [
        ("client", "192.0.2.0/24", "partner")
    ]
    assert "google.com" in cli("greylist", "whitelist", "list", "--kind", "client").out

    recipients = tmp_path / "whitelist_recipients"
    recipients.write_text("postmaster@\nsupport@monsite.be\n")
    out = cli("greylist", "whitelist", "import", str(recipients), "--json").json
    assert out == {
        "kind": "recipient",
        "source": "whitelist_recipients",
        "added": 2,
        "already_present": 0,
    }
    broken = tmp_path / "clients"
    broken.write_text("good.example\nthis is bad\n")
    failed = cli("greylist", "whitelist", "import", str(broken), ok=False)
    assert failed.code == 65 and "Nothing imported" in failed.err and "line 2" in failed.err
    missing = cli("greylist", "whitelist", "import", str(tmp_path / "nope"), ok=False)
    assert missing.code == 66

    refused = cli("greylist", "whitelist", "remove", "client", "192.0.2.0/24", ok=False)
    assert "--yes" in refused.err  # destructive: confirmation needed off a terminal
    cli("greylist", "whitelist", "remove", "client", "192.0.2.0/24", "--yes")
    gone = cli("greylist", "whitelist", "remove", "client", "192.0.2.0/24", "--yes", ok=False)
    assert gone.code == 66


def test_domain_and_mailbox_switches(cli: InProcess, monsite: Customer) -> None:
    shown = cli("greylist", "domain", "monsite.be", "--json").json
    assert shown["enabled"] is True and shown["delay_seconds"] == 900
    off = cli("greylist", "domain", "monsite.be", "--off", "--delay", "5m", "--json").json
    assert (off["enabled"], off["delay_seconds"], off["delay_overridden"]) == (False, 300, True)
    text = cli("greylist", "domain", "monsite.be", "--on", "--delay", "default").out
    assert "Greylisting                     on" in text and "(server default)" in text
    missing = cli("greylist", "domain", "nosuch.be", ok=False)
    assert missing.code == 66
    assert (
        "monsite (monsite.be): off."
        in cli("greylist", "mailbox", "monsite.be", "monsite", "--off").out
    )
    mailbox = cli("greylist", "mailbox", "monsite.be", "monsite", "--json").json
    assert mailbox == {
        "login": "monsite",
        "domain": "monsite.be",
        "enabled": False,
        "effective": False,
    }


def test_purge(cli: InProcess, make_engine: EngineFactory) -> None:
    engine = make_engine()
    ask(engine)
    engine.flush()
    assert cli("greylist", "purge", "--json").json == {"triplets": 0, "networks": 0}
    refused = cli("greylist", "purge", "--all", ok=False)
    assert "--yes" in refused.err
    assert "Purged 1 triplets" in cli("greylist", "purge", "--all", "--yes").out


def test_the_command_line_keeps_english(
    cli: InProcess, make_engine: EngineFactory, settings: Any
) -> None:
    """Whatever `[general] language` says, the lookup's sentences stay English here."""
    settings.LANGUAGE_CODE = "fr"
    engine = make_engine()
    ask(engine, sender="alice@example.org", recipient="info@monsite.be")
    engine.flush()
    text = cli("greylist", "lookup", "--sender", "alice@example.org").out
    assert text.startswith("1 message(s) are waiting for the sending server to retry; a retry")
    assert "was deferred by greylisting (1 time(s) so far)" in text
    refused = cli("greylist", "whitelist", "add", "client", "bad host!", ok=False)
    assert "is not a valid client whitelist entry" in refused.err
