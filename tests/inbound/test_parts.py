"""The pieces of the incoming checks on their own: DMARC records and alignment, the
Authentication-Results header, XFORWARD values, Junk lessons, hostile input."""

from __future__ import annotations

import string
from types import SimpleNamespace

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from courriel.inbound import dmarc, gate
from courriel.inbound.authresults import header, result, strip_ours
from courriel.inbound.checks import from_domains, parsed_from_domains, plain_from_domain
from courriel.inbound.learning import lesson
from courriel.inbound.sender_policy import SpfResult
from courriel.inbound.signatures import MAX_SIGNATURES, DkimResult, verify_dkim


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=DMARC1; p=reject", ("reject", "reject", "r", "r", 100)),
        (
            "v=DMARC1;p=quarantine;sp=none;adkim=s;aspf=s;pct=20",
            ("quarantine", "none", "s", "s", 20),
        ),
        ("v=DMARC1; p=bogus; rua=mailto:x@example.org", ("none", "none", "r", "r", 100)),
        ("v=DMARC1; p=reject; pct=abc", ("reject", "reject", "r", "r", 100)),
    ],
)
def test_dmarc_records(text: str, expected: tuple) -> None:
    record = dmarc.parse_record(text, "example.org")
    assert record is not None
    assert (record.p, record.sp, record.adkim, record.aspf, record.pct) == expected


@pytest.mark.parametrize("text", ["v=spf1 -all", "p=reject; v=DMARC1", "v=DMARC1; p=bogus", ""])
def test_not_dmarc_records(text: str) -> None:
    assert dmarc.parse_record(text, "example.org") is None


def test_alignment_uses_the_organisational_domain() -> None:
    assert dmarc.organisational_domain("mail.example.co.uk") == "example.co.uk"
    assert dmarc.aligned("bounces.example.org", "example.org")
    assert not dmarc.aligned("bounces.example.org", "example.org", "s")
    assert not dmarc.aligned("example.co.uk", "other.co.uk")  # a public suffix is no org
    spf = SpfResult("pass", "mailfrom", "mail.example.org")
    assert dmarc.alignment("example.org", spf, []).passed
    unsigned = SpfResult("fail", "mailfrom", "example.org")
    late = [DkimResult("temperror", "example.org", "s1", "")]
    assert dmarc.alignment("example.org", unsigned, late).temporary
    wrong = [DkimResult("pass", "evil.example", "s1", "")]
    found = dmarc.alignment("example.org", unsigned, wrong)
    assert not found.passed and not found.temporary


def test_our_results_header_and_only_ours_removed() -> None:
    built = header(
        "mx.courriel.test",
        [result("spf", "pass", "ok (fine)\r\nX-Injected: 1", smtp_mailfrom="example.org")],
    )
    assert built == (
        b"Authentication-Results: mx.courriel.test;\r\n\tspf=pass (ok fine X-Injected: 1)"
        b" smtp.mailfrom=example.org\r\n"
    )
    message = (
        b"Authentication-Results:\r\n mx.courriel.test; dkim=pass\r\n"
        b"Authentication-Results: other.example; spf=pass\r\n"
        b"authentication-results: (comment) MX.Courriel.Test; spf=pass\r\n\tmore\r\n"
        b"Subject: hi\r\n\r\nAuthentication-Results: mx.courriel.test; in the body\r\n"
    )
    assert strip_ours(message, "mx.courriel.test") == (
        b"Authentication-Results: other.example; spf=pass\r\n"
        b"Subject: hi\r\n\r\nAuthentication-Results: mx.courriel.test; in the body\r\n"
    )


def test_header_from_domains() -> None:
    message = (
        b"From: =?utf-8?q?Dir=C3=A9ctrice?= <Direction@MonSite.be>,\r\n"
        b" other@example.org\r\nFrom: x@monsite.be\r\nSubject: s\r\n\r\nFrom: b@body.example\r\n"
    )
    assert from_domains(message) == ["monsite.be", "example.org"]
    assert from_domains(b"Subject: no from\r\n\r\n") == []
    assert from_domains(b"From: info@caf\xc3\xa9.be\r\n\r\n") == ["xn--caf-dma.be"]


@given(
    st.text(alphabet=string.ascii_letters + string.digits + " _-.'\"(),;:<>@\\", max_size=40)
    | st.builds(
        "{}<{}@{}>".format,
        st.text(alphabet=string.ascii_letters + " _-.,;:@'\"()<>\\", max_size=12),
        st.from_regex(r"[A-Za-z0-9_+-]+(\.[A-Za-z0-9_+-]+)*", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", fullmatch=True),
    )
)
@example("Direction <direction@monsite.be>")
@example("direction@monsite.be <forger@evil.example>")  # two addresses for the parser
@example('"direction@monsite.be" <forger@evil.example>')
@example("Direction (monsite.be) <forger@evil.example>")
@example("forger@evil.example, direction@monsite.be")
def test_the_plain_from_shortcut_reads_what_the_parser_reads(value: str) -> None:
    """The shortcut for `Name <local@domain>` gives the email parser's domain, and
    leaves every other form to the parser."""
    plain = plain_from_domain(value)
    if plain is not None:
        assert [plain] == parsed_from_domains([value])


def test_hostile_dkim_signatures_are_reported_not_raised() -> None:
    garbage = b"DKIM-Signature: v=1; a=rsa-sha256; d=; b=\xff\r\n" * (MAX_SIGNATURES + 5)
    results = verify_dkim(garbage + b"From: a@example.org\r\n\r\nbody\r\n")
    assert len(results) == MAX_SIGNATURES
    assert {r.result for r in results} == {"permerror"}


def test_xforward_attributes() -> None:
    session = SimpleNamespace()
    assert gate.take_xforward(session, "ADDR=IPV6:2001:DB8::1 HELO=mail+2Eexample.org") == (
        "250 2.0.0 Ok"
    )
    assert gate.forwarded_client(session) == gate.Client("2001:db8::1", "mail.example.org")
    assert gate.take_xforward(session, "NAME=[UNAVAILABLE] SOURCE=LOCAL").startswith("250")
    assert gate.forwarded_client(session).local  # type: ignore[union-attr]
    assert gate.take_xforward(session, "ADDR=999.1.1.1").startswith("501")
    assert gate.take_xforward(session, "").startswith("501")
    gate.forget_xforward(session)
    assert gate.forwarded_client(session) is None


@pytest.mark.parametrize(
    ("source", "target", "spam"),
    [
        ("INBOX", "Junk", True),
        ("Archive/2024", "Junk", True),
        ("Junk", "INBOX", False),
        ("Junk", "Archive", False),
        ("Junk", "Trash", None),  # deleting spam says nothing new
        ("Junk", "Junk", None),
        ("INBOX", "Archive", None),
    ],
)
def test_what_a_move_teaches(source: str, target: str, spam: bool | None) -> None:
    assert lesson(source, target) is spam


def test_the_edge_login_is_read_from_the_top_received_header_only() -> None:
    from courriel.inbound.gate import edge_login

    submitted = (
        b"Received: from laptop (laptop [198.51.100.20])\r\n"
        b"\t(Authenticated sender: monsite0001)\r\n\tby edge.test with ESMTPSA\r\n"
        b"Received: from x (Authenticated sender: someone-else)\r\nSubject: hi\r\n\r\nhi\r\n"
    )
    assert edge_login(submitted) == "monsite0001"
    from_outside = (
        b"Received: from mx.example.org (mx.example.org [203.0.113.9])\r\n\tby edge.test\r\n"
        b"Received: from forged (Authenticated sender: monsite0001)\r\nSubject: x\r\n\r\nx\r\n"
    )
    assert edge_login(from_outside) is None
    assert edge_login(b"Subject: (Authenticated sender: monsite0001)\r\n\r\nx\r\n") is None


def test_only_signed_messages_pay_for_dkimpy() -> None:
    """An unsigned message is not parsed by dkimpy (1.8 ms per 100 KiB); a signature
    field in any case or at the very top still is."""
    from courriel.inbound.signatures import verify_dkim

    body = b"\r\n" + b"x" * 76 * 1300
    assert verify_dkim(b"From: a@example.org\r\nSubject: dkim-signature: no\r\n" + body) == []
    for top in (b"DKIM-Signature", b"dkim-signature", b"Dkim-Signature"):
        [result] = verify_dkim(top + b": v=1; d=x; s=y; b=\r\nFrom: a@example.org\r\n" + body)
        assert result.result == "permerror" and result.domain == "x"
    [result] = verify_dkim(b"From: a@example.org\r\nDKIM-Signature: v=1; d=z; s=y\r\n" + body)
    assert result.domain == "z"
