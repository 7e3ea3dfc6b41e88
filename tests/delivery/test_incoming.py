"""The manual's chapters 7 to 10 as mail actually flowing through `courriel serve`:
real SMTP sessions on port 25 (smtplib), real Maildirs, a real outside provider."""

from __future__ import annotations

import smtplib

import pytest

from tests.fixtures.platform import STRONG, Platform, message


@pytest.fixture(scope="module")
def accounts(platform: Platform) -> Platform:
    c = platform.courriel
    c(
        "user",
        "create",
        "monsite.be",
        "--real",
        "Info",
        "--pass",
        STRONG,
        "--extra",
        "info",
        "--extra",
        "contact",
        "--extra",
        "information",
    )  # monsite0001
    c("user", "create", "monsite.be", "--real", "John", "--pass", STRONG, "--extra", "john")
    c(
        "user",
        "create",
        "monsite.be",
        "--real",
        "Off",
        "--pass",
        STRONG,
        "--extra",
        "off",
        "--primary-disabled",
    )  # monsite0003
    c("alias", "create", "monsite.be", "frederic", "--to", "frederic@gmail.com")
    c(
        "alias",
        "create",
        "monsite.be",
        "old",
        "--bounce",
        "--message",
        "This address is no longer in use.",
    )
    c("alias", "create", "monsite.be", "team", "--everyone")
    return platform


def test_info_contact_and_information_land_in_monsite0001(accounts: Platform) -> None:
    for address in ("info@monsite.be", "contact@monsite.be", "information@monsite.be"):
        accounts.send("alice@example.org", [address], f"for {address}")
    stored = accounts.wait_messages("monsite0001", 3)
    assert len(stored) == 3
    for address in ("info@monsite.be", "contact@monsite.be", "information@monsite.be"):
        copy = next(m for m in stored if f"for {address}".encode() in m)
        assert copy.startswith(
            b"Return-Path: <alice@example.org>\r\nDelivered-To: "
            + address.encode()
            + b"\r\nReceived: from "
        )
        assert b"by mx.courriel.test (Courriel)" in copy


def test_postmaster_and_abuse_reach_the_owner(accounts: Platform) -> None:
    before = len(accounts.messages("monsite"))
    accounts.send("bob@example.org", ["postmaster@monsite.be", "abuse@monsite.be"], "abuse report")
    stored = accounts.wait_messages("monsite", before + 1)
    # One message for two addresses of the same mailbox: one copy.
    assert sum(b"abuse report" in m for m in stored) == 1


def test_alias_to_an_external_address_is_forwarded(accounts: Platform) -> None:
    accounts.send("carol@example.org", ["frederic@monsite.be"], "pour Frederic")
    [forwarded] = accounts.sink.wait_for(1, where=lambda m: b"pour Frederic" in m.content)
    assert forwarded.recipients == ["frederic@gmail.com"]
    assert forwarded.sender.startswith("SRS0=") and forwarded.sender.endswith("@monsite.be")
    assert b"Delivered-To: frederic@monsite.be" in forwarded.content


def test_everyone_in_the_domain(accounts: Platform) -> None:
    accounts.send("dave@example.org", ["team@monsite.be"], "team meeting")
    for login in ("monsite", "monsite0001", "monsite0002", "monsite0003"):
        assert accounts.wait_message(login, b"team meeting"), login


def test_refusals_at_rcpt_time(accounts: Platform) -> None:
    with accounts.smtp() as client:
        client.ehlo("client.example.org")
        assert client.mail("eve@example.org")[0] == 250
        assert client.rcpt("nobody@monsite.be") == (550, b"5.1.1 No such user here")
        assert client.rcpt("old@monsite.be") == (550, b"5.1.1 This address is no longer in use.")
        assert client.rcpt("monsite0003@monsite.be")[0] == 550  # primary address disabled
        assert client.rcpt("someone@gmail.com") == (554, b"5.7.1 Relay access denied")
        assert client.rcpt("bad address@monsite.be")[0] in {501, 553}
        assert client.rcpt("off@monsite.be")[0] == 250  # its additional address works


def test_catch_all(accounts: Platform) -> None:
    accounts.courriel("alias", "create", "monsite.be", "--catch-all", "--mailbox", "monsite0002")
    try:
        accounts.send("fred@example.org", ["whatever-123@monsite.be"], "caught")
        assert accounts.wait_message("monsite0002", b"caught")
    finally:
        accounts.courriel("alias", "delete", "monsite.be", "*", "--yes")
    with accounts.smtp() as client:
        client.ehlo("client.example.org")
        client.mail("fred@example.org")
        assert client.rcpt("whatever-456@monsite.be")[0] == 550


def test_sub_address_reaches_the_mailbox(accounts: Platform) -> None:
    accounts.send("news@example.org", ["info+newsletter@monsite.be"], "tagged")
    copy = accounts.wait_message("monsite0001", b"tagged")
    assert b"Delivered-To: info+newsletter@monsite.be" in copy


def test_extensions_and_enhanced_codes(accounts: Platform) -> None:
    with accounts.smtp() as client:
        code, _ = client.ehlo("client.example.org")
        assert code == 250
        for extension in (
            "size",
            "pipelining",
            "8bitmime",
            "smtputf8",
            "enhancedstatuscodes",
            "starttls",
        ):
            assert client.has_extn(extension), extension
        assert not client.has_extn("auth")  # never on port 25
        assert client.docmd("RCPT TO:<info@monsite.be>") == (503, b"5.5.1 Error: need MAIL command")
        assert client.docmd("VRFY info@monsite.be")[0] == 252


def test_starttls_on_port_25(accounts: Platform) -> None:
    from tests.fixtures.platform import insecure_context

    with accounts.smtp() as client:
        client.starttls(context=insecure_context())
        client.ehlo("client.example.org")
        client.sendmail(
            "tls@example.org",
            ["info@monsite.be"],
            message("tls@example.org", ["info@monsite.be"], "over TLS"),
        )
    copy = accounts.wait_message("monsite0001", b"over TLS")
    assert b"with ESMTPS (" in copy


def test_message_too_big_for_the_size_limit(accounts: Platform) -> None:
    with accounts.smtp() as client:
        client.ehlo("client.example.org")
        limit = int(client.esmtp_features["size"])
        code, _ = client.mail("big@example.org", [f"SIZE={limit + 1}"])
        assert code == 552


def test_unknown_recipients_among_good_ones(accounts: Platform) -> None:
    refused = accounts.send("mixed@example.org", ["john@monsite.be", "ghost@monsite.be"], "mixed")
    assert set(refused) == {"ghost@monsite.be"}
    assert accounts.wait_message("monsite0002", b"mixed")


def test_the_setup_mail_reached_the_customer(accounts: Platform) -> None:
    [setup] = accounts.sink.wait_for(1, where=lambda m: m.recipients == ["contact@gmail.com"])
    text = setup.content.decode()
    assert "The following mail domain has been set up successfully" in text
    assert "Administration login: monsite" in text
    assert setup.sender == ""
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        accounts.send("x@example.org", ["nobody@monsite.be"], "x")


def test_a_message_is_visible_to_imap_the_moment_its_250_is_sent(accounts: Platform) -> None:
    """A new IMAP session right after "250" sees the message (it was written into the
    Maildir before the reply), big ones too."""
    import imaplib

    from tests.fixtures.platform import insecure_context

    body = ("x" * 76 + "\r\n") * 26_000  # 2 MB
    for attempt in range(5):
        subject = f"visible at once {attempt}"
        accounts.send("alice@example.org", ["info@monsite.be"], body, headers={"X-Tag": subject})
        client = imaplib.IMAP4("127.0.0.1", accounts.port("imap"), timeout=60)
        client.starttls(ssl_context=insecure_context())
        client.login("monsite0001", STRONG)
        client.select("INBOX", readonly=True)
        _, found = client.search(None, "HEADER", "X-Tag", f'"{subject}"')
        client.logout()
        assert found[0].split(), f"attempt {attempt}: not visible right after the 250"
