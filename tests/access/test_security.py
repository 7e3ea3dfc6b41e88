"""TLS (STARTTLS and implicit), passwords only over TLS, disabled logins, throttling."""

from __future__ import annotations

import imaplib
import poplib

import pytest

from courriel.accounts.models import Mailbox
from tests.access.conftest import Access, message


def test_no_password_in_clear_text_by_default(strict_access: Access) -> None:
    access = strict_access
    client = imaplib.IMAP4("127.0.0.1", access.ports["imap"], timeout=10)
    assert "LOGINDISABLED" in client.capabilities and "STARTTLS" in client.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        client.login(access.login, access.password)
    client.starttls(access.tls())
    assert "LOGINDISABLED" not in client.capabilities
    client.login(access.login, access.password)
    assert client.select("INBOX")[0] == "OK"
    client.logout()

    pop = poplib.POP3("127.0.0.1", access.ports["pop3"], timeout=10)
    assert "USER" not in pop.capa() and "STLS" in pop.capa()
    with pytest.raises(poplib.error_proto, match="TLS"):
        pop.user(access.login)
    pop.stls(access.tls())
    pop.user(access.login)
    pop.pass_(access.password)
    pop.quit()


def test_implicit_tls_ports(strict_access: Access) -> None:
    access = strict_access
    access.deliver(message("Secure"))
    client = imaplib.IMAP4_SSL(
        "127.0.0.1", access.ports["imaps"], ssl_context=access.tls(), timeout=10
    )
    client.login(access.address, access.password)
    assert client.select("INBOX")[1] == [b"1"]
    client.logout()
    pop = poplib.POP3_SSL("127.0.0.1", access.ports["pop3s"], context=access.tls(), timeout=10)
    pop.user(access.login)
    pop.pass_(access.password)
    assert pop.stat()[0] == 1
    pop.quit()


def test_disabled_login_is_refused_with_a_clear_message(access: Access) -> None:
    Mailbox.objects.filter(login=access.login).update(login_disabled=True)
    access.deliver(message("Still arrives"))
    client = imaplib.IMAP4("127.0.0.1", access.ports["imap"], timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match=r"CONTACTADMIN.*temporarily disabled"):
        client.login(access.login, access.password)
    pop = poplib.POP3("127.0.0.1", access.ports["pop3"], timeout=10)
    pop.user(access.login)
    with pytest.raises(poplib.error_proto, match="temporarily disabled"):
        pop.pass_(access.password)
    # A wrong password does not reveal that the login is disabled.
    pop = poplib.POP3("127.0.0.1", access.ports["pop3"], timeout=10)
    pop.user(access.login)
    with pytest.raises(poplib.error_proto, match="Wrong login or password"):
        pop.pass_("not the password")


def test_failed_logins_are_throttled(access: Access) -> None:
    client = imaplib.IMAP4("127.0.0.1", access.ports["imap"], timeout=10)
    for n in range(5):
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            client.login(access.login, f"wrong password {n}")
    with pytest.raises(imaplib.IMAP4.error, match="Too many failed logins"):
        client.login(access.login, access.password)  # even the right one, for a while
    pop = poplib.POP3("127.0.0.1", access.ports["pop3"], timeout=10)
    pop.user(access.login)
    with pytest.raises(poplib.error_proto, match="SYS/TEMP"):
        pop.pass_(access.password)
