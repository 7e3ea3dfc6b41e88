"""Bad input through the CLI: one clear line on stderr, a non-zero exit code, no
traceback, and nothing changed."""

from __future__ import annotations

import pytest

from tests.fixtures.processes import Courriel, InProcess

STRONG = "C0mpl3xP@ssW0rD?!"


@pytest.fixture
def customer(cli: InProcess) -> InProcess:
    cli("domain", "create", "monsite.be", "--plan", "recommended")
    cli("user", "create", "monsite.be", "--pass", STRONG, "--extra", "info")
    return cli


def snapshot(courriel: InProcess) -> tuple[str, str, str]:
    return (
        courriel("domain", "list", "--json").out,
        courriel("user", "list", "monsite.be", "--json").out,
        courriel("alias", "list", "monsite.be", "--json").out,
    )


CASES = [
    (["domain", "create", "not a domain", "--plan", "simple"], 65, "not a valid domain"),
    (["domain", "create", "new.be", "--plan", "gold"], 66, "No plan named 'gold'"),
    (["domain", "create", "monsite.be", "--plan", "simple"], 65, "already exists"),
    (["domain", "show", "nothere.be"], 66, "No virtual server named"),
    (["user", "create", "monsite.be", "--pass", STRONG, "--quota", "lots"], 65, "Invalid size"),
    (["user", "create", "monsite.be", "--pass", STRONG, "--quota", "31G"], 65, "more than the"),
    (["user", "create", "monsite.be", "--pass", "weak"], 65, "too short"),
    (["user", "create", "monsite.be", "--pass", STRONG, "--extra", "info"], 65, "already used"),
    (["user", "create", "monsite.be", "--pass", STRONG, "--extra", "a@@b"], 65, "not"),
    (["user", "create", "monsite.be", "--login", "monsite0001", "--pass", STRONG], 65, "taken"),
    (["user", "forward", "monsite.be", "monsite0001", "--to", "nope"], 65, "not an e-mail"),
    (["user", "forward", "monsite.be", "ghost", "--to", "a@b.be"], 66, "No mailbox"),
    (
        [
            "user",
            "autoreply",
            "monsite.be",
            "monsite0001",
            "--message",
            "x",
            "--start",
            "31/02/2020",
        ],
        65,
        "Invalid date",
    ),
    (
        [
            "user",
            "autoreply",
            "monsite.be",
            "monsite0001",
            "--message",
            "x",
            "--start",
            "2020-05-02",
            "--end",
            "2020-05-01",
        ],
        65,
        "before its start",
    ),
    (
        ["user", "autoreply", "monsite.be", "monsite0001", "--message", "x", "--interval", "soon"],
        65,
        "Invalid duration",
    ),
    (["alias", "create", "monsite.be", "postmaster", "--to", "x@gmail.com"], 65, "already"),
    (["alias", "create", "monsite.be", "empty"], 65, "Choose where"),
    (["alias", "delete", "monsite.be", "ghost", "--yes"], 66, "No alias"),
    (["plan", "create", "recommended"], 65, "already exists"),
    (["plan", "modify", "recommended", "--max-mailboxes", "0"], 65, "already has 1 mailboxes"),
    (["user", "delete", "monsite.be", "monsite", "--yes"], 65, "owner's mailbox"),
]


@pytest.mark.parametrize(
    ("args", "code", "message"), CASES, ids=[" ".join(c[0][:3]) for c in CASES]
)
def test_bad_input_is_refused_cleanly(
    customer: InProcess, args: list[str], code: int, message: str
) -> None:
    before = snapshot(customer)
    result = customer(*args, ok=False)
    assert result.code == code, result.err
    assert message in result.err
    assert result.err.startswith("courriel: ") and result.err.count("\n") == 1
    assert snapshot(customer) == before


def test_usage_errors_and_confirmation(customer: InProcess) -> None:
    missing = customer("user", "create", ok=False)
    assert missing.code == 2 and "DOMAIN" in missing.err
    # Destructive commands ask; without a terminal they need --yes.
    refused = customer("user", "delete", "monsite.be", "monsite0001", ok=False)
    assert "--yes" in refused.err
    assert len(customer("user", "list", "monsite.be", "--json").json) == 2
    customer("user", "delete", "monsite.be", "monsite0001", "--yes")
    assert len(customer("user", "list", "monsite.be", "--json").json) == 1


def test_database_unavailable_is_a_clear_temporary_error(courriel: Courriel) -> None:
    courriel.env["COURRIEL_DATABASE_URL"] = "postgresql://nobody:x@127.0.0.1:1/none"
    result = courriel("domain", "list", ok=False)
    assert result.code == 75
    assert "Cannot reach the database" in result.err and "x@" not in result.err


def test_a_real_process_reports_errors_in_one_line(courriel: Courriel) -> None:
    result = courriel("domain", "create", "not a domain", "--plan", "simple", ok=False)
    assert result.code == 65
    assert result.err.splitlines()[-1].startswith("courriel: ")
    assert "Traceback" not in result.err
