"""Mail we vouch for is mail we checked (issue 12): SPF, DKIM, DMARC and ARC on mail
received on port 25, against a real DNS server of the test's own (nsd)."""

from __future__ import annotations

import email
import smtplib
import subprocess
import time
from email import policy

import dkim
import pytest

from tests.inbound.conftest import (
    ATTACKER_IP,
    AUTHSERV_ID,
    EXAMPLE_IP,
    MONSITE_IP,
    QUARANTINE_IP,
    STRANGER_IP,
    World,
    letter,
    signed,
)


def top_header(content: bytes, name: str) -> str:
    """The first (topmost) header of that name, unfolded."""
    message = email.message_from_bytes(content, policy=policy.compat32)
    value = message.get(name)
    assert value is not None, f"no {name} header in {content[:600]!r}"
    return " ".join(str(value).split())


def test_a_forged_from_of_our_own_domain_is_refused_and_not_forwarded(world: World) -> None:
    """The issue's swaks run: an outsider whose own domain passes SPF writes
    `From: direction@monsite.be` to info@monsite.be, which forwards to Gmail."""
    result = subprocess.run(
        [
            "swaks",
            "--server",
            f"127.0.0.1:{world.platform.port('smtp')}",
            "--local-interface",
            ATTACKER_IP,
            "--from",
            "attacker@evil.example",
            "--to",
            "info@monsite.be",
            "--h-From",
            "Directeur <direction@monsite.be>",
            "--h-Subject",
            "forged director",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "<** 550 5.7.1 Message refused: the header From domain monsite.be is hosted" in (
        result.stdout
    ), result.stdout
    # Nothing reached the mailbox, nor the "Gmail" sink (nothing was queued for it).
    assert "forged director" not in world.platform.courriel("queue", "list").out
    assert not [m for m in world.platform.sink.messages if b"forged director" in m.content]
    assert not [m for m in world.platform.messages("monsite0001") if b"forged director" in m]


def test_our_own_domain_from_an_address_its_spf_allows_is_accepted(world: World) -> None:
    world.send(
        MONSITE_IP,
        "compta@monsite.be",
        "info@monsite.be",
        letter("Compta <compta@monsite.be>", "info@monsite.be", "own domain, SPF pass"),
        helo="mail.monsite.be",
    )
    copy = world.platform.wait_message("monsite0001", b"own domain, SPF pass")
    results = top_header(copy, "Authentication-Results")
    assert "spf=pass" in results and "smtp.mailfrom=monsite.be" in results
    assert "dmarc=pass" in results and "header.from=monsite.be" in results


def test_a_signed_message_is_delivered_with_its_results_and_forwarded_sealed(
    world: World,
) -> None:
    original = signed(
        letter("Alice <alice@example.org>", "info@monsite.be", "legit from example.org"),
        world.example_key,
    )
    world.send(EXAMPLE_IP, "alice@example.org", "info@monsite.be", original)
    local = world.platform.wait_message("monsite0001", b"legit from example.org")
    results = top_header(local, "Authentication-Results")
    assert results.startswith(f"{AUTHSERV_ID};")
    assert "spf=pass" in results and "smtp.mailfrom=example.org" in results
    assert "dkim=pass" in results and "header.d=example.org" in results and "header.s=s1" in results
    assert "dmarc=pass" in results and "header.from=example.org" in results
    assert "arc=none" in results
    # The local copy starts with our trace headers, the results among them.
    assert local.index(b"Authentication-Results:") < local.index(b"DKIM-Signature:")

    [forward] = world.platform.sink.wait_for(
        1, where=lambda m: b"legit from example.org" in m.content
    )
    assert forward.recipients == ["monsite@gmail.com"]
    # The sender's own signature is kept, and still verifies at the next hop...
    assert dkim.verify(forward.content, dnsfunc=world.txt)
    assert b"d=example.org" in forward.content
    # ...our ARC set (sealed for the forwarding domain) verifies too...
    cv, _instances, reason = dkim.arc_verify(forward.content, dnsfunc=world.txt)
    assert cv == dkim.CV_Pass, reason
    assert b"ARC-Seal: i=1;" in forward.content and b"d=monsite.be" in forward.content
    aar = top_header(forward.content, "ARC-Authentication-Results")
    assert f"i=1; {AUTHSERV_ID}" in aar and "dkim=pass" in aar and "dmarc=pass" in aar
    # ...and we did not sign someone else's mail with our domain's key.
    sealed = email.message_from_bytes(forward.content, policy=policy.compat32)
    assert all("d=monsite.be" not in s for s in sealed.get_all("DKIM-Signature", []))


def test_a_dmarc_reject_failure_is_refused(world: World) -> None:
    with world.smtp(STRANGER_IP) as client:
        client.ehlo("stranger.test")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(
                "alice@example.org",
                ["compta@monsite.be"],
                letter("alice@example.org", "compta@monsite.be", "pretends to be alice"),
            )
    assert refused.value.smtp_code == 550
    assert refused.value.smtp_error.startswith(b"5.7.1 Message refused: it fails the DMARC")
    assert b"p=reject" in refused.value.smtp_error
    assert not [m for m in world.platform.messages("monsite0002") if b"pretends to be" in m]


def test_a_dmarc_quarantine_failure_lands_in_junk_and_is_not_forwarded(world: World) -> None:
    world.send(
        STRANGER_IP,
        "bob@quarantine.example",
        "info@monsite.be",
        letter("bob@quarantine.example", "info@monsite.be", "quarantined one"),
        helo="stranger.test",
    )
    copy = wait_in_junk(world, "monsite0001", b"quarantined one")
    assert "dmarc=fail" in top_header(copy, "Authentication-Results")
    assert "p=quarantine" in top_header(copy, "Authentication-Results")
    assert not [m for m in world.platform.messages("monsite0001") if b"quarantined one" in m]
    # The forward to Gmail is withheld: a later legitimate message is forwarded, this not.
    world.send(
        QUARANTINE_IP,
        "bob@quarantine.example",
        "info@monsite.be",
        letter("bob@quarantine.example", "info@monsite.be", "a legitimate one after it"),
    )
    world.platform.sink.wait_for(1, where=lambda m: b"a legitimate one after it" in m.content)
    assert not [m for m in world.platform.sink.messages if b"quarantined one" in m.content]


def wait_in_junk(world: World, login: str, needle: bytes, timeout: float = 20) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for found in world.platform.messages(login, folder="Junk"):
            if needle in found:
                return found
        time.sleep(0.05)
    raise AssertionError(f"no message with {needle!r} in {login}'s Junk folder")


def test_headers_claiming_our_results_are_removed(world: World) -> None:
    forged = letter(
        "Bob <bob@quarantine.example>",
        "compta@monsite.be",
        "forged results",
        headers={"Authentication-Results": f"{AUTHSERV_ID}; dkim=pass; dmarc=pass"},
    )
    world.send(QUARANTINE_IP, "bob@quarantine.example", "compta@monsite.be", forged)
    copy = world.platform.wait_message("monsite0002", b"forged results")
    message = email.message_from_bytes(copy, policy=policy.compat32)
    [ours] = message.get_all("Authentication-Results")
    assert "dkim=none" in ours and "spf=pass" in ours and "dmarc=pass" in ours


def test_a_signed_in_user_may_not_write_a_foreign_header_from(world: World) -> None:
    with world.platform.submission("monsite0001") as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(
                "info@monsite.be",
                ["someone@example.org"],
                letter("CEO <ceo@bank.example>", "someone@example.org", "sign this"),
            )
        assert refused.value.smtp_code == 553
        assert refused.value.smtp_error == (
            b"5.7.1 <ceo@bank.example>: header From address not owned by user monsite0001"
        )
        # Their own address is fine, and the relayed mail is signed for monsite.be.
        client.sendmail(
            "info@monsite.be",
            ["someone@example.org"],
            letter("Info <info@monsite.be>", "someone@example.org", "own header from"),
        )
    [sent] = world.platform.sink.wait_for(1, where=lambda m: b"own header from" in m.content)
    assert dkim.verify(sent.content, dnsfunc=world.txt)


def test_the_providers_override_keeps_dmarc_reject_failures_in_junk(world: World) -> None:
    courriel = world.platform.courriel
    courriel("filter", "domain", "monsite.be", "--dmarc", "quarantine")
    try:
        world.send(
            STRANGER_IP,
            "alice@example.org",
            "compta@monsite.be",
            letter("alice@example.org", "compta@monsite.be", "kept despite p=reject"),
            helo="stranger.test",
        )
        copy = wait_in_junk(world, "monsite0002", b"kept despite p=reject")
        assert "dmarc=fail" in top_header(copy, "Authentication-Results")
    finally:
        courriel("filter", "domain", "monsite.be", "--dmarc", "follow")
