"""IMAP NOTIFY (RFC 5465): a client that asked for it hears, without asking again and
while it sits idle on its connection, about new mail and flag changes in its other
folders (`* STATUS`), about folders created, renamed, deleted or (un)subscribed by
another client (`* LIST`), and about its selected folder (EXISTS/EXPUNGE/FETCH), as
from Dovecot 2.3. Broken and abusive requests get a clear refusal and nothing of
another account."""

from __future__ import annotations

import re
import smtplib

import pytest

from tests.access.conftest import Access, Service, message
from tests.access.raw import Client


@pytest.fixture
def clients(access: Access):  # type: ignore[no-untyped-def]
    opened: list[Client] = []

    def make() -> Client:
        client = Client(access.ports["imap"], access.login, access.password)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def _status(lines: list[str]) -> dict[str, str]:
    return {
        m.group(1): m.group(2)
        for line in lines
        if (m := re.match(r'\* STATUS "?([^"(]+?)"? \((.*)\)$', line))
    }


PERSONAL = "(PERSONAL (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))"


def test_notify_is_offered_after_login_only(access: Access) -> None:
    client = Client(access.ports["imap"])
    assert "NOTIFY" not in client.command("CAPABILITY")[0].split()
    refused = client.command(f"NOTIFY SET {PERSONAL}")[-1]
    assert refused.startswith("t2 BAD"), refused
    client.login(access.login, access.password)
    assert "NOTIFY" in client.command("CAPABILITY")[0].split()
    client.close()


def test_set_status_tells_every_mailbox_in_scope_but_the_selected_one(
    access: Access, clients
) -> None:
    access.deliver(message("one"), folder="Work")
    client = clients()
    client.ok("SELECT INBOX")
    lines = client.ok(f"NOTIFY SET STATUS {PERSONAL}")
    status = _status(lines)
    assert "INBOX" not in status
    assert set(status) == {"Drafts", "Sent", "Junk", "Trash", "Work"}
    assert re.fullmatch(
        r"MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1 HIGHESTMODSEQ \d+", status["Work"]
    )
    lines = client.ok("NOTIFY SET STATUS (MAILBOXES (Work Nowhere) (MessageNew MessageExpunge))")
    assert list(_status(lines)) == ["Work"]
    assert re.fullmatch(r"MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1", _status(lines)["Work"])


def test_new_mail_in_another_folder_is_told_unsolicited(access: Access, clients) -> None:
    access.deliver(message("one"), folder="Work")
    client = clients()
    client.ok("SELECT INBOX")
    client.ok(f"NOTIFY SET {PERSONAL}")
    access.deliver(message("two"), folder="Work")  # as another program would
    seen = client.unsolicited(r"^\* STATUS Work ")
    assert seen[-1].startswith("* STATUS Work (MESSAGES 2 UIDNEXT 3 UNSEEN 2"), seen


def test_folders_created_renamed_deleted_by_another_session(access: Access, clients) -> None:
    watcher, other = clients(), clients()
    watcher.ok(f"NOTIFY SET {PERSONAL}")
    other.ok("CREATE Projets")
    assert watcher.unsolicited(r"Projets")[-1] == '* LIST () "/" Projets'
    other.ok("RENAME Projets Archives")
    assert watcher.unsolicited(r"Archives")[-1] == '* LIST () "/" Archives ("OLDNAME" (Projets))'
    other.ok("SUBSCRIBE Archives")
    assert watcher.unsolicited(r"Archives")[-1] == '* LIST (\\Subscribed) "/" Archives'
    other.ok("UNSUBSCRIBE Archives")
    assert watcher.unsolicited(r"Archives")[-1] == '* LIST () "/" Archives'
    other.ok("DELETE Archives")
    assert watcher.unsolicited(r"Archives")[-1] == '* LIST (\\NonExistent) "/" Archives'
    assert watcher.quiet(0.5) == []


def test_flag_change_by_another_session(access: Access, clients) -> None:
    access.deliver(message("one"), folder="Work")
    watcher, other = clients(), clients()
    watcher.ok(f"NOTIFY SET {PERSONAL}")
    other.ok("SELECT Work")
    other.ok("STORE 1 +FLAGS (\\Seen)")
    assert watcher.unsolicited(r"^\* STATUS Work")[-1] == "* STATUS Work (UNSEEN 0)"
    other.ok("STORE 1 +FLAGS (\\Deleted)")
    other.ok("EXPUNGE")
    last = watcher.unsolicited(r"^\* STATUS Work \(MESSAGES")[-1]
    assert last == "* STATUS Work (MESSAGES 0 UIDNEXT 2 UNSEEN 0)"


def test_the_selected_mailbox_is_told_exists_and_fetch(access: Access, clients) -> None:
    client = clients()
    client.ok("SELECT INBOX")
    client.ok(
        "NOTIFY SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
        " MessageExpunge FlagChange)) " + PERSONAL
    )
    access.deliver(message("Hello selected"))
    seen = client.unsolicited(r"^\* 1 FETCH")
    assert "* 1 EXISTS" in seen
    assert seen[-1].startswith("* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {")
    assert not any(line.startswith("* STATUS INBOX") for line in seen)


def test_notify_none_stops_everything(access: Access, clients) -> None:
    watcher, other = clients(), clients()
    watcher.ok(f"NOTIFY SET {PERSONAL}")
    watcher.ok("NOTIFY NONE")
    other.ok("CREATE Silence")
    access.deliver(message("quiet"), folder="Work")
    assert watcher.quiet(1.5) == []
    assert watcher.command("NOOP") == ["t3 OK NOOP completed."]


@pytest.mark.parametrize(
    ("request_", "answer"),
    [
        ("NOTIFY", "BAD"),
        ("NOTIFY BOGUS", "BAD"),
        ("NOTIFY SET", "BAD"),
        ("NOTIFY SET (PERSONAL ())", "BAD"),
        ("NOTIFY SET (PERSONAL (MessageNew) ", "BAD"),
        ("NOTIFY SET (NOWHERE (MessageNew))", "BAD"),
        ("NOTIFY SET (PERSONAL (NoSuchEvent))", "BAD"),
        ("NOTIFY SET (SUBTREE () (MessageNew))", "BAD"),
        ("NOTIFY SET (PERSONAL (MessageNew (UID)))", "BAD"),
        ("NOTIFY SET (SELECTED (MessageNew))", "BAD"),
        ("NOTIFY SET (SELECTED (FlagChange))", "BAD"),
        ("NOTIFY SET (SELECTED NONE) (SELECTED-DELAYED NONE)", "BAD"),
        (
            "NOTIFY SET (PERSONAL (AnnotationChange MailboxMetadataChange MessageNew"
            " ServerMetadataChange))",
            "NO [BADEVENT AnnotationChange MailboxMetadataChange ServerMetadataChange]",
        ),
        (
            "NOTIFY SET (MAILBOXES (" + " ".join(f"F{n}" for n in range(101)) + ") (MessageNew))",
            "NO [NOTIFICATIONOVERFLOW]",
        ),
        ("NOTIFY SET (MAILBOXES (" + "x " * 2000 + "x) (MessageNew))", "BAD"),
    ],
)
def test_broken_requests_are_refused(access: Access, clients, request_: str, answer: str) -> None:
    client = clients()
    assert client.command(request_)[-1].startswith(f"t1 {answer}")
    assert client.command("NOOP")[-1].startswith("t2 OK")


def test_other_accounts_names_yield_nothing(access: Access, clients) -> None:
    """Paths and other namespaces in a NOTIFY name no folder of this account: no STATUS,
    no error that tells whether they exist."""
    client = clients()
    names = '("../../other/Maildir" "#shared/x" "~other" "/etc" ".." "INBOX/../..")'
    lines = client.ok(f"NOTIFY SET STATUS (MAILBOXES {names} (MessageNew MessageExpunge))")
    assert lines == ["t1 OK NOTIFY completed."]
    lines = client.ok(f"NOTIFY SET STATUS (SUBTREE {names} (MessageNew MessageExpunge))")
    assert lines == ["t2 OK NOTIFY completed."]


def test_a_flood_of_changes_is_coalesced(access: Access, clients) -> None:
    access.deliver(message("first"), folder="Work")
    client = clients()
    client.ok("NOTIFY SET (MAILBOXES Work (MessageNew MessageExpunge))")
    for number in range(300):
        access.deliver(message(f"flood {number}"), folder="Work")
    seen = client.unsolicited(r"MESSAGES 301 ")
    assert len(seen) < 100, f"{len(seen)} STATUS lines for 300 messages"


@pytest.mark.slow
def test_smtp_delivery_to_inbox_is_told_while_another_folder_is_selected(
    service: Service,
) -> None:
    client = Client(service.ports["imap"], service.login, service.password)
    client.ok("CREATE Work")
    client.ok("SELECT Work")
    lines = client.ok("NOTIFY SET STATUS (INBOXES (MessageNew MessageExpunge))")
    assert _status(lines)["INBOX"].startswith("MESSAGES 0 UIDNEXT 1 ")
    with smtplib.SMTP("127.0.0.1", service.ports["smtp"], timeout=30) as smtp:
        smtp.sendmail("frederic@gmail.com", ["info@monsite.be"], message("par SMTP"))
    seen = client.unsolicited(r"^\* STATUS INBOX")
    assert seen[-1].startswith("* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UNSEEN 1"), seen
    client.close()
