"""The manual's chapters 1 and 3 to 11, replayed with the real `courriel` command."""

from __future__ import annotations

from tests.fixtures.processes import Courriel

STRONG = "C0mpl3xP@ssW0rD?!"


def test_manual_chapters_through_the_cli(courriel: Courriel) -> None:
    # Chapter 1: the provider creates the customer's mail domain on a plan and a server.
    courriel(
        "server", "add", "maximusconfessor", "maximusconfessor.all2all.org", "--ip", "62.58.108.13"
    )
    courriel("server", "add", "moses", "moses.all2all.org")
    created = courriel(
        "domain",
        "create",
        "monsite.be",
        "--plan",
        "recommended",
        "--server",
        "maximusconfessor",
        "--contact",
        "monsite@monsite.be",
        "--desc",
        "Monsite",
        "--json",
    ).json
    assert created["owner"] == "monsite"
    password = created["password"]
    assert len(password) >= 15
    setup = created["setup"]
    assert setup["hosting_server"] == "maximusconfessor.all2all.org"
    assert setup["admin_url"] == "https://maximusconfessor.all2all.org:10000/"
    assert setup["admin_login"] == "monsite"
    # The contact address is in monsite.be itself: its mailbox opens only with the
    # password the set-up mail would carry, so none is sent (issue 16).
    assert created["setup_mail_sent_to"] is None
    assert created["setup_mail_withheld"] == "monsite@monsite.be"

    # Chapters 3 and 5: domain information and virtual server details.
    shown = courriel("domain", "show", "monsite.be", "--json").json
    assert shown["plan"] == "recommended" and shown["ip_address"] == "62.58.108.13"
    assert shown["usage"]["servers"] == 1 and shown["usage"]["max_servers"] == 5
    assert shown["usage"]["mail_quota"] == 30 * 1024**3
    text = courriel("domain", "show", "monsite.be").out
    assert "1 out of 5" in text and "out of 30 GB" in text

    # Chapter 6 and 7: monsite0001 "Info" with info@, contact@ and information@.
    out = courriel(
        "user",
        "create",
        "monsite.be",
        "--real",
        "Info",
        "--pass",
        STRONG,
        "--extra",
        "info@monsite.be",
        "--address",
        "contact@monsite.be",
        "--address",
        "information@monsite.be",
    ).out
    assert "monsite0001" in out
    assert "Based on your limits, 9 additional mailboxes can be added." in out
    listing = courriel("user", "list", "monsite.be").out
    assert "Based on your limits, 9 additional mailboxes can be added." in listing
    assert "monsite0001  monsite0001     Info" in listing
    user = courriel("user", "show", "monsite.be", "monsite0001", "--json").json
    assert user["additional_addresses"] == [
        "contact@monsite.be",
        "info@monsite.be",
        "information@monsite.be",
    ]
    assert user["quota"] == 3 * 1024**3

    # Chapter 8: forwarding to monsite@gmail.com, keeping a copy.
    courriel("user", "forward", "monsite.be", "monsite0001", "--to", "monsite@gmail.com")
    # Chapter 9: vacation message with dates and a 10-minute interval.
    courriel(
        "user",
        "autoreply",
        "monsite.be",
        "monsite0001",
        "--message",
        "I'm currently not available",
        "--interval",
        "10m",
        "--start",
        "9/09/2099",
        "--end",
        "2099-09-19",
    )
    user = courriel("user", "show", "monsite.be", "monsite0001", "--json").json
    assert user["forward_to"] == ["monsite@gmail.com"] and user["deliver_normally"]
    assert user["autoreply"] == {
        "enabled": True,
        "message": "I'm currently not available",
        "interval_seconds": 600,
        "start": "2099-09-09",
        "end": "2099-09-19",
    }
    resolved = courriel("resolve", "information@monsite.be", "--date", "2099-09-10", "--json").json
    assert [c["login"] for c in resolved["copies"]] == ["monsite0001"]
    assert resolved["forwards"] == ["monsite@gmail.com"] and resolved["autoreplies"]

    # Chapter 10: default aliases to the owner, and frederic -> frederic@gmail.com.
    courriel("alias", "create", "monsite.be", "frederic", "--to", "frederic@gmail.com")
    aliases = {a["name"]: a for a in courriel("alias", "list", "monsite.be", "--json").json}
    assert sorted(aliases) == ["abuse", "frederic", "hostmaster", "postmaster", "webmaster"]
    assert aliases["postmaster"]["mailboxes"] == ["monsite"]
    assert aliases["frederic"]["forward_to"] == ["frederic@gmail.com"]
    assert courriel("resolve", "frederic@monsite.be", "--json").json["forwards"] == [
        "frederic@gmail.com"
    ]

    # Chapter 11: both ways to change a password; never shown back.
    courriel("user", "password", "monsite.be", "monsite0001", "--pass", "N3w-Passw0rd-2026")
    courriel("user", "password", "monsite.be", "monsite0001", input="An0ther-Passw0rd!\n")
    generated = courriel("user", "password", "monsite.be", "monsite0001", "--generate").out
    assert "shown only this once" in generated
    user_json = courriel("user", "show", "monsite.be", "monsite0001", "--json").out
    assert "password_hash" not in user_json and "N3w-Passw0rd" not in user_json

    # Chapter 4: the plan allows 10 mailboxes; the 11th is refused with a clear error.
    lines = "\n".join(f"monsite{n:04d}:User {n}:{STRONG}:0:1:0::" for n in range(2, 11))
    batch = courriel("user", "import", "monsite.be", "-", input=lines + "\n")
    assert "9 created, 0 refused" in batch.out
    refused = courriel(
        "user", "create", "monsite.be", "--real", "Eleventh", "--pass", STRONG, ok=False
    )
    assert refused.code == 65
    assert "allows 10 mailboxes" in refused.err and refused.err.count("\n") == 1
    assert len(courriel("user", "list", "monsite.be", "--json").json) == 11

    # Everything above is in the audit log.
    actions = [e["action"] for e in courriel("audit", "--json", "--limit", "100").json]
    assert "domain.create" in actions and "alias.create" in actions
    assert actions.count("mailbox.create") == 10
