"""Chapter 8: forwarding to another provider keeps working, passes SPF (SRS), never
lends our DKIM signature to someone else's mail, and bounces find their way back to
the original sender. (Checked mail forwarded with its signatures and our ARC seal:
tests/inbound/test_authentication.py.)"""

from __future__ import annotations

import dkim
import pytest

from tests.fixtures.platform import STRONG, Platform, message


@pytest.fixture(scope="module")
def forwarding(platform: Platform) -> Platform:
    c = platform.courriel
    c("user", "create", "monsite.be", "--real", "Info", "--pass", STRONG, "--extra", "info")
    c("user", "forward", "monsite.be", "monsite0001", "--to", "monsite@gmail.com")
    c(
        "user",
        "create",
        "monsite.be",
        "--real",
        "Away",
        "--pass",
        STRONG,
        "--extra",
        "away",
        "--quota",
        "1K",
    )
    c("user", "forward", "monsite.be", "monsite0002", "--to", "away@gmail.com")
    return platform


def dns_txt(platform: Platform) -> dict[bytes, bytes]:
    records = platform.courriel("domain", "dns", "monsite.be", "--json").json
    return {f"{r['name']}.".encode(): r["value"].encode() for r in records if r["type"] == "TXT"}


def test_forward_to_gmail_has_srs_sender_and_no_signature_of_ours(forwarding: Platform) -> None:
    forwarding.send("alice@example.org", ["info@monsite.be"], "forward me")
    [copy] = forwarding.sink.wait_for(1, where=lambda m: b"forward me" in m.content)
    assert copy.recipients == ["monsite@gmail.com"]
    assert copy.sender.startswith("SRS0=") and copy.sender.endswith("=example.org=alice@monsite.be")
    # From alice@example.org: signing it d=monsite.be would vouch for a stranger's mail.
    assert b"DKIM-Signature" not in copy.content
    # The local copy is kept too ("Deliver to this user normally").
    assert forwarding.wait_message("monsite0001", b"forward me")


def test_a_forward_of_our_own_mail_is_signed_for_our_domain(forwarding: Platform) -> None:
    # From a trusted network (loopback here) with one of our addresses in From.
    forwarding.send("info@monsite.be", ["info@monsite.be"], "our own, forwarded")
    [copy] = forwarding.sink.wait_for(1, where=lambda m: b"our own, forwarded" in m.content)
    records = dns_txt(forwarding)
    assert dkim.verify(copy.content, dnsfunc=lambda name, timeout=5: records.get(name, b""))
    assert b"d=monsite.be" in copy.content and b"s=courriel" in copy.content


def test_a_bounce_to_the_srs_address_returns_to_the_original_sender(forwarding: Platform) -> None:
    forwarding.send("bob@example.org", ["info@monsite.be"], "will bounce")
    [copy] = forwarding.sink.wait_for(1, where=lambda m: b"will bounce" in m.content)
    bounce = message("MAILER-DAEMON@gmail.com", [copy.sender], "Your message bounced")
    with forwarding.smtp() as client:
        client.sendmail("", [copy.sender], bounce)
    [returned] = forwarding.sink.wait_for(1, where=lambda m: b"Your message bounced" in m.content)
    assert returned.recipients == ["bob@example.org"] and returned.sender == ""


def test_forged_srs_addresses_are_refused(forwarding: Platform) -> None:
    with forwarding.smtp() as client:
        client.ehlo("gmail.com")
        client.mail("")
        code, text = client.rcpt("SRS0=AAAA=ZZ=example.org=victim@monsite.be")
        assert (code, text) == (550, b"5.1.1 Invalid or expired SRS address")


def test_a_full_mailbox_still_forwards(forwarding: Platform) -> None:
    # monsite0002 has a 1 KiB quota: a 4 KiB message cannot be stored, but the forward
    # goes out anyway (the manual warns the old system stopped forwarding here).
    body = "\r\n".join(["x" * 70] * 60)
    forwarding.send("carol@example.org", ["away@monsite.be"], body)
    [copy] = forwarding.sink.wait_for(1, where=lambda m: m.recipients == ["away@gmail.com"])
    assert body.encode() in copy.content
    assert forwarding.messages("monsite0002") == []
