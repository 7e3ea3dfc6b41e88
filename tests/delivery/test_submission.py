"""Port 587: mailbox users send mail after STARTTLS and AUTH; nobody relays otherwise."""

from __future__ import annotations

import base64
import smtplib

import dkim
import pytest

from tests.fixtures.platform import STRONG, Platform, insecure_context, message


@pytest.fixture(scope="module")
def senders(platform: Platform) -> Platform:
    c = platform.courriel
    c("user", "create", "monsite.be", "--real", "Info", "--pass", STRONG, "--extra", "info")
    c("user", "create", "monsite.be", "--real", "Gone", "--pass", STRONG, "--disabled")
    c("user", "create", "monsite.be", "--real", "Guess", "--pass", STRONG)
    return platform


def test_auth_only_after_starttls(senders: Platform) -> None:
    with smtplib.SMTP("127.0.0.1", senders.port("submission"), timeout=60) as client:
        client.ehlo("laptop")
        assert not client.has_extn("auth")
        assert client.docmd("MAIL FROM:<info@monsite.be>")[0] == 530
        client.starttls(context=insecure_context())
        client.ehlo("laptop")
        assert "PLAIN" in client.esmtp_features["auth"] and "LOGIN" in client.esmtp_features["auth"]
        assert client.docmd("MAIL FROM:<info@monsite.be>")[0] == 530  # not signed in yet


def test_signed_in_user_relays_to_another_provider_with_dkim(senders: Platform) -> None:
    with senders.submission("monsite0001") as client:
        client.sendmail(
            "info@monsite.be",
            ["friend@gmail.com"],
            message("Info <info@monsite.be>", ["friend@gmail.com"], "from my laptop"),
        )
    [sent] = senders.sink.wait_for(1, where=lambda m: b"from my laptop" in m.content)
    assert sent.sender == "info@monsite.be" and sent.recipients == ["friend@gmail.com"]
    records = {
        f"{r['name']}.".encode(): r["value"].encode()
        for r in senders.courriel("domain", "dns", "monsite.be", "--json").json
    }
    assert dkim.verify(sent.content, dnsfunc=lambda name, timeout=5: records.get(name, b""))
    assert b"with ESMTPSA" in sent.content


def test_auth_login_mechanism_and_login_by_address(senders: Platform) -> None:
    with senders.submission() as client:
        client.user, client.password = "monsite0001@monsite.be", STRONG
        code, _ = client.auth("LOGIN", client.auth_login)
        assert code == 235


def test_sender_must_belong_to_the_user(senders: Platform) -> None:
    with senders.submission("monsite0001") as client:
        code, text = client.docmd("MAIL FROM:<postmaster@monsite.be>")
        assert code == 553 and b"not owned" in text
        assert client.docmd("MAIL FROM:<ceo@bank.example>")[0] == 553
        assert client.docmd("MAIL FROM:<info@monsite.be>")[0] == 250


def test_wrong_password_disabled_login_and_throttling(senders: Platform) -> None:
    with senders.submission() as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
            client.login("monsite0003", "not-the-password")
        assert wrong.value.smtp_code == 535
    with senders.submission() as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as disabled:
            client.login("monsite0002", STRONG)
        assert b"temporarily disabled" in disabled.value.smtp_error
    for n in range(4):
        with senders.submission() as client, pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("monsite0003", f"still-wrong-{n}")
    with senders.submission() as client:
        blob = base64.b64encode(f"\0monsite0003\0{STRONG}".encode()).decode()
        code, text = client.docmd("AUTH PLAIN " + blob)
        assert code == 454 and b"Too many failed logins" in text  # even the right password


def test_one_failed_login_counts_once_whatever_the_mechanisms(senders: Platform) -> None:
    """smtplib's login() tries PLAIN, then LOGIN: that counted twice, so 3 typos locked
    the user out. Now 4 different wrong passwords leave the right one working."""
    senders.courriel("user", "create", "monsite.be", "--real", "Typo", "--pass", STRONG)
    for n in range(4):
        with senders.submission() as client, pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("monsite0004", f"typo-{n}")
    with senders.submission("monsite0004") as client:
        assert client.noop()[0] == 250


def test_no_auth_and_no_relay_on_port_25(senders: Platform) -> None:
    with senders.smtp() as client:
        client.starttls(context=insecure_context())
        client.ehlo("laptop")
        assert not client.has_extn("auth")
        client.mail("info@monsite.be")
        assert client.rcpt("friend@gmail.com")[0] == 554
