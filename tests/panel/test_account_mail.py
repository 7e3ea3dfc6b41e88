"""Chapter 6's "Send new account email to" (Add a user) and "Send updated account email
to" (Edit Mailbox): the mailbox's settings go to the new mailbox or to an address,
through the outbound queue; the chapter 1 set-up mail says where it went."""

from __future__ import annotations

import html
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from courriel.accounts.models import Mailbox
from courriel.accounts.services.mailboxes import send_account_mail
from courriel.audit.models import AuditEntry
from courriel.errors import NotFoundError, ValidationError
from courriel.outbound.spool import get_spool
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.panel import Browser

NEW = "/d/monsite.be/users/new/"
INFO = "/d/monsite.be/user/monsite0001/"


def notices() -> list[tuple[list[str], EmailMessage]]:
    """What the platform itself has queued: (recipients, message)."""
    spool = get_spool()
    return [
        (
            [r.address for r in entry.recipients],
            message_from_bytes(spool.read_message(entry.id), policy=policy.default),  # type: ignore[misc]
        )
        for entry in spool.entries()
        if entry.kind == "notice"
    ]


def body(message: EmailMessage) -> str:
    return message.get_body().get_content()  # type: ignore[union-attr]


def new_user(**changes: str) -> dict[str, Any]:
    data = {
        "primary_local_part": "monsite0001",
        "login": "monsite0001",
        "real_name": "Info",
        "password_0": "value",
        "password_1": STRONG,
        "quota_0": "none",
        "primary_enabled": "True",
        "deliver_normally": "on",
    }
    data.update(changes)
    return data


def test_the_add_page_offers_the_manual_s_three_choices(owner_browser: Browser) -> None:
    page = html.unescape(owner_browser.text(NEW))
    assert "Send new account email to" in page
    for value, label in (("none", "Don't send"), ("mailbox", "New mailbox address")):
        assert f'name="send_account_mail_to_0" value="{value}"' in page and label in page
    assert 'name="send_account_mail_to_1"' in page


def test_new_account_mail_to_the_new_mailbox(
    owner_browser: Browser, monsite: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_browser.post(NEW, new_user(send_account_mail_to_0="mailbox"), follow=True)
    assert "The account e-mail was sent to monsite0001@monsite.be." in response.content.decode()
    (recipients, message), *_ = [n for n in notices() if "Your new mailbox" in n[1]["Subject"]]
    assert recipients == ["monsite0001@monsite.be"]
    text = body(message)
    assert "Login: monsite0001" in text and "maximusconfessor.all2all.org, port 993" in text
    assert STRONG not in text  # a password typed by the owner is never mailed


def test_new_account_mail_to_an_address_with_the_generated_password(
    owner_browser: Browser, monsite: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_browser.post(
            NEW,
            new_user(
                password_0="none",
                send_account_mail_to_0="value",
                send_account_mail_to_1="Boss@Example.org",
            ),
        )
    page = response.content.decode()
    assert "The account e-mail was sent to boss@example.org." in page
    shown = page.split('<p class="secret-value"><code>')[1].split("</code>")[0]
    [(recipients, message)] = [n for n in notices() if "Your new mailbox" in n[1]["Subject"]]
    assert recipients == ["boss@example.org"] and f"Password: {shown}" in body(message)


def test_a_bad_address_is_refused_on_its_field_and_nothing_is_created(
    owner_browser: Browser, monsite: Customer
) -> None:
    for typed, expected in (("not an address", "is not an e-mail address"), ("", "Enter a value")):
        response = owner_browser.post(
            NEW, new_user(send_account_mail_to_0="value", send_account_mail_to_1=typed)
        )
        page = response.content.decode()
        assert response.status_code == 200 and expected in page
        assert 'id="id_send_account_mail_to_notes"' in page  # next to its field
    assert not Mailbox.objects.filter(login="monsite0001").exists()
    assert notices() == []


def test_updated_account_mail_from_the_edit_page(
    owner_browser: Browser, info: Mailbox, monsite: Customer
) -> None:
    page = owner_browser.text(INFO)
    assert "Send updated account email to" in page
    assert 'value="mailbox"' not in page  # the manual's edit page: Don't send / Address
    from tests.panel.test_mailbox_pages import edit_form

    response = owner_browser.post(
        INFO,
        edit_form(info, send_account_mail_to_0="value", send_account_mail_to_1="info@gmail.com"),
        follow=True,
    )
    page = response.content.decode()
    assert "Mailbox monsite0001 saved." in page
    assert "The account e-mail was sent to info@gmail.com." in page
    [(recipients, message)] = notices()
    assert recipients == ["info@gmail.com"]
    assert "Password: the password your administrator gave you" in body(message)
    entry = AuditEntry.objects.get(action="mailbox.send_account_mail")
    assert entry.target == "monsite0001" and entry.details["to"] == "info@gmail.com"
    # Saving without choosing an address sends nothing more.
    owner_browser.post(INFO, edit_form(info, send_account_mail_to_0="none"))
    assert len(notices()) == 1


def test_one_rule_for_every_interface(
    monsite: Customer, autre: Customer, info: Mailbox, cli: Any
) -> None:
    from courriel.accounts.permissions import Actor

    assert send_account_mail(monsite.actor, info, "mailbox") == "monsite0001@monsite.be"
    with pytest.raises(NotFoundError):
        send_account_mail(autre.actor, info, "mailbox")  # another customer's mailbox
    with pytest.raises(NotFoundError):
        send_account_mail(Actor.for_mailbox(info), info, "mailbox")  # not the owner
    with pytest.raises(ValidationError) as refused:
        send_account_mail(monsite.actor, info, "info@")
    assert refused.value.field == "send_account_mail_to"
    done = cli("user", "send-account-mail", "monsite.be", "monsite0001", "--to", "a@example.org")
    assert "Account e-mail for monsite0001 sent to a@example.org." in done.out
    assert [n[0] for n in notices()] == [["monsite0001@monsite.be"], ["a@example.org"]]
    refused_cli = cli(
        "user", "send-account-mail", "monsite.be", "monsite0001", "--to", "nope", ok=False
    )
    assert refused_cli.code == 65 and "is not an e-mail address" in refused_cli.err


def test_the_set_up_page_says_where_the_access_codes_were_mailed(
    provider_browser: Browser, servers: Any, django_capture_on_commit_callbacks: Any
) -> None:
    form = {"plan": "recommended", "server": "maximusconfessor", "password_0": "none"}
    with django_capture_on_commit_callbacks(execute=True):
        response = provider_browser.post(
            "/provider/domains/new/",
            {**form, "name": "monsite.be", "contact_email": "monsite@gmail.com"},
        )
    page = response.content.decode()
    assert "These facts were e-mailed to the contact address monsite@gmail.com." in page
    password = page.split('<code class="secret-value">')[1].split("</code>")[0]
    [(recipients, message)] = notices()
    assert recipients == ["monsite@gmail.com"]
    assert message["Subject"] == "Mail domain monsite.be has been set up"
    assert f"Administration password: {password}" in body(message)

    with django_capture_on_commit_callbacks(execute=True):
        response = provider_browser.post("/provider/domains/new/", {**form, "name": "autre.be"})
    assert "No contact e-mail was given, so nothing was e-mailed" in response.content.decode()
    assert len(notices()) == 1
