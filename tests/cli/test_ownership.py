"""`courriel domain verify NAME` and `courriel domain approve NAME` (issue 11, item 1),
and the pending state shown by `courriel domain list` and `courriel resolve`."""

from __future__ import annotations

from courriel.accounts.services import domains
from courriel.accounts.services.ownership import verification_record
from tests.fixtures.accounts import Customer
from tests.fixtures.nsd import PrivateNSD
from tests.fixtures.processes import InProcess


def test_verify_and_approve_from_the_command_line(
    cli: InProcess, monsite: Customer, nsd: PrivateNSD
) -> None:
    claim = domains.create_domain(monsite.actor, "monsite.fr", parent=monsite.domain).domain
    domains.add_domain_alias(monsite.actor, monsite.domain, "monsite.eu")
    listing = cli("domain", "list").out
    assert "pending" in listing
    assert "not hosted here" in cli("resolve", "postmaster@monsite.fr", ok=False).out
    _, value = verification_record(claim)
    nsd.zone("monsite.fr", [nsd.txt("_courriel-verify", value)])
    nsd.zone("monsite.eu", ["@ IN A 127.0.0.1"])
    nsd.start()
    missing = cli("domain", "verify", "monsite.eu", ok=False)
    assert missing.code == 65 and "_courriel-verify.monsite.eu" in missing.err
    assert "monsite.fr is verified" in cli("domain", "verify", "monsite.fr").out
    assert "monsite.eu is approved" in cli("domain", "approve", "monsite.eu").out
    assert "mailbox monsite" in cli("resolve", "postmaster@monsite.eu").out
    unknown = cli("domain", "approve", "nothing.be", ok=False)
    assert unknown.code == 66
    shown = cli("domain", "show", "monsite.be").out
    assert "pending" not in shown


def test_public_suffixes_are_refused_by_the_cli(cli: InProcess, monsite: Customer) -> None:
    refused = cli("domain", "create", "co.uk", "--plan", "simple", ok=False)
    assert refused.code == 65 and "public suffix" in refused.err
