"""DNS records a customer publishes (MX, SPF, DKIM, DMARC)."""

from __future__ import annotations

import dkim

from courriel.accounts.services.dns import dns_records
from courriel.accounts.services.domains import add_domain_alias
from courriel.delivery.dkim import sign
from tests.fixtures.accounts import Customer


def test_records_for_monsite(monsite: Customer) -> None:
    add_domain_alias(monsite.actor, monsite.domain, "monsite.eu")
    records = {(r.name, r.type): r for r in dns_records(monsite.domain)}
    assert records[("monsite.be", "MX")].value == "10 maximusconfessor.all2all.org."
    assert records[("monsite.be", "TXT")].value.startswith("v=spf1 mx a:maximusconfessor")
    assert records[("_dmarc.monsite.be", "TXT")].value.startswith("v=DMARC1; p=quarantine")
    assert ("monsite.eu", "MX") in records
    dkim_record = records[("courriel._domainkey.monsite.be", "TXT")]
    line = dkim_record.zone_line()
    assert line.count('"') >= 4  # long key split into 255-character strings
    signed = sign(b"From: info@monsite.be\r\nSubject: x\r\n\r\nbody\r\n", "monsite.be")
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: dkim_record.value.encode())
