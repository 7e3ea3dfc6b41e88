"""Production mode, Dovecot side: the private Dovecot made from `courriel edge
dovecot` serves the Maildirs Courriel wrote, with the passwords of Courriel's
database, Courriel's quotas, and the same UIDs, flags and POP3 UIDLs Courriel's own
code reads (no `chown -R` by hand, no client downloading everything again)."""

from __future__ import annotations

import imaplib
import json
import re
import smtplib
import subprocess
import sys

import pytest

from tests.edge.conftest import Edge, insecure
from tests.fixtures.platform import STRONG
from tests.fixtures.rspamd import PrivateRspamd
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.slow


def deliver_through_postfix(edge: Edge, recipient: str, subject: str) -> None:
    with edge.smtp() as client:
        client.sendmail(
            "alice@example.org",
            [recipient],
            f"From: alice@example.org\r\nSubject: {subject}\r\n\r\nhello\r\n".encode(),
        )


def test_imap_and_pop3_through_dovecot_with_each_mailboxs_password(edge: Edge) -> None:
    deliver_through_postfix(edge, "info@monsite.be", "for dovecot")
    edge.wait_message("monsite0001", b"Subject: for dovecot")
    for user in ("monsite0001", "monsite0001@monsite.be"):  # the login or the primary address
        client = edge.imap_login(user)
        typ, data = client.select("INBOX", readonly=True)
        assert typ == "OK" and int(data[0]) >= 1
        _, found = client.search(None, "SUBJECT", '"for dovecot"')
        assert found[0].split()
        client.logout()
    pop = edge.pop3_login("monsite0001")
    count, _ = pop.stat()
    assert count >= 1
    assert any(b"Subject: for dovecot" in b"\r\n".join(pop.retr(n + 1)[1]) for n in range(count))
    pop.quit()


def test_wrong_disabled_and_changed_passwords(edge: Edge) -> None:
    with pytest.raises(imaplib.IMAP4.error):
        edge.imap_login("monsite0002", "not-the-password")
    edge.courriel("user", "modify", "monsite.be", "monsite0002", "--disable")
    try:
        with pytest.raises(imaplib.IMAP4.error):
            edge.imap_login("monsite0002")
    finally:
        edge.courriel("user", "modify", "monsite.be", "monsite0002", "--enable")
    new = "An0ther-Str0ng-Passphrase!"
    edge.courriel("user", "password", "monsite.be", "monsite0002", "--password", new)
    try:
        edge.imap_login("monsite0002", new).logout()  # at once: no cache, no export
        with pytest.raises(imaplib.IMAP4.error):
            edge.imap_login("monsite0002", STRONG)
    finally:
        edge.courriel("user", "password", "monsite.be", "monsite0002", "--password", STRONG)


def test_submission_through_postfix_signs_in_against_dovecot(edge: Edge) -> None:
    with smtplib.SMTP("127.0.0.1", edge.submission, timeout=60) as client:
        client.starttls(context=insecure())
        client.login("monsite0001", STRONG)
        client.sendmail(
            "info@monsite.be",
            ["small@monsite.be"],
            b"From: info@monsite.be\r\nSubject: submitted at the edge\r\n\r\nhi\r\n",
        )
        code, text = client.mail("ceo@monsite.be")  # an address of another mailbox
        assert code == 250  # Postfix decides at RCPT
        code, text = client.rcpt("small@monsite.be")
        assert code == 553 and b"not owned by user monsite0001" in text, (code, text)
        client.rset()
        client.mail("info@monsite.be")
        code, text = client.rcpt("nobody@monsite.be")  # refused now, not bounced later
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)
    edge.wait_message("monsite0002", b"Subject: submitted at the edge")
    with smtplib.SMTP("127.0.0.1", edge.submission, timeout=60) as client:
        client.starttls(context=insecure())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("monsite0001", "wrong password")


def test_submission_from_a_users_home_address_is_theirs_not_a_strangers(edge: Edge) -> None:
    """A user at home (not a trusted network) submits through Postfix to a colleague:
    Courriel's LMTP must not judge it as outside mail forging monsite.be (its SPF does
    not list the user's home address). Postfix names the signed-in user in the
    Received header it adds; Courriel takes that header only, the top one."""
    with smtplib.SMTP("127.0.0.1", edge.submission, timeout=60) as client:
        client.ehlo("laptop.home.example")
        code, text = client.docmd("XCLIENT", "ADDR=198.51.100.20 NAME=laptop.home.example")
        assert code == 220, text
        client.ehlo("laptop.home.example")
        client.starttls(context=insecure())
        client.ehlo("laptop.home.example")
        client.login("monsite0001", STRONG)
        client.sendmail(
            "info@monsite.be",
            ["small@monsite.be"],
            b"From: Info <info@monsite.be>\r\n"
            b"Received: from forged (Authenticated sender: monsite0002)\r\n"
            b"Subject: from home\r\n\r\nhi\r\n",
        )
    delivered = edge.wait_message("monsite0002", b"Subject: from home")
    assert b"Authenticated sender: monsite0001" in delivered


def test_submitted_mail_for_outside_leaves_from_courriels_queue_signed(edge: Edge) -> None:
    """Postfix hands what its signed-in users submit to Courriel ([relay]), which signs
    it with the domain's DKIM key and sends it from its own queue."""
    with smtplib.SMTP("127.0.0.1", edge.submission, timeout=60) as client:
        client.starttls(context=insecure())
        client.login("monsite0001", STRONG)
        client.sendmail(
            "info@monsite.be",
            ["friend@gmail.com"],
            b"From: Info <info@monsite.be>\r\nTo: friend@gmail.com\r\n"
            b"Subject: to a friend\r\n\r\nhello\r\n",
        )
    [sent] = edge.sink.wait_for(1, where=lambda m: m.recipients == ["friend@gmail.com"])
    assert sent.sender == "info@monsite.be"
    assert sent.header("Subject") == "to a friend"
    signature = sent.header("DKIM-Signature") or ""
    assert "d=monsite.be" in signature.replace(" ", "")
    assert b"Authenticated sender: monsite0001" in sent.content


def test_the_relay_takes_only_the_edge_and_only_signed_in_users_mail(edge: Edge) -> None:
    relay = edge.served.ports["relay"]
    with smtplib.SMTP("127.0.0.1", relay, timeout=60, source_address=("127.0.0.2", 0)) as other:
        other.ehlo("not-the-edge.example")
        code, text = other.mail("info@monsite.be")
        assert code == 550 and b"Not an edge host" in text
    # From the edge's address (trusted like XFORWARD), but not what its submission
    # service hands over: no signed-in user named on top.
    with smtplib.SMTP("127.0.0.1", relay, timeout=60) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(
                "info@monsite.be",
                ["friend@gmail.com"],
                b"Received: from mx.example.org by edge.test\r\n"
                b"Received: from forged (Authenticated sender: monsite0001)\r\n"
                b"Subject: not from the edge's submission\r\n\r\nx\r\n",
            )
        assert refused.value.smtp_code == 550


def test_quota_is_courriels(edge: Edge) -> None:
    client = edge.imap_login("monsite0002")
    typ, data = client.getquotaroot("INBOX")
    client.logout()
    assert typ == "OK"
    limit = re.search(rb"STORAGE (\d+) (\d+)", data[1][0])
    assert limit and int(limit.group(2)) == 1024  # 1 MiB, in KiB
    used_kib = int(limit.group(1))
    sizefile = edge.maildir("monsite0002") / "maildirsize"
    header, *changes = sizefile.read_text().splitlines()
    assert header.startswith("1048576S")
    ours = sum(int(line.split()[0]) for line in changes)
    assert abs(used_kib - ours // 1024) <= 1


READER = """
import json, sys
from pathlib import Path
from courriel.access.pop3.session import uidl
from courriel.mailstore.index import FolderIndex
maildir = Path(sys.argv[1])
index = FolderIndex(maildir, maildir)
index.refresh()
print(json.dumps({
    "uidvalidity": index.uidvalidity,
    "messages": [
        {"uid": m.uid, "flags": sorted(index.flags(m)), "uidl": uidl(index, m)}
        for m in sorted(index.by_uid.values(), key=lambda m: m.uid)
    ],
}))
"""


def courriel_view(edge: Edge, login: str) -> dict:
    """What Courriel's own code reads in the Maildir, run as the service user (as
    `courriel serve` would: a root process would leave root's files there)."""
    result = subprocess.run(
        ["runuser", "-u", "courriel", "--", sys.executable, "-c", READER,
         str(edge.maildir(login))],
        capture_output=True, text=True, check=True, env=edge.courriel.env,
    )  # fmt: skip
    return json.loads(result.stdout)


def test_same_uids_flags_and_uidls_in_dovecot_and_courriel(edge: Edge) -> None:
    for n in range(3):
        deliver_through_postfix(edge, "small@monsite.be", f"uid test {n}")
    for n in range(3):
        edge.wait_message("monsite0002", f"Subject: uid test {n}".encode())
    client = edge.imap_login("monsite0002")
    client.select("INBOX")
    client.store("1", "+FLAGS", "(\\Seen \\Flagged)")
    _, data = client.fetch("1:*", "(UID FLAGS)")
    _, status = client.status("INBOX", "(UIDVALIDITY)")
    client.logout()
    dovecot = {
        int(m.group(1)): sorted(m.group(2).decode().split())
        for item in data
        if (m := re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", item))
    }
    validity = int(re.search(rb"UIDVALIDITY (\d+)", status[0]).group(1))
    pop = edge.pop3_login("monsite0002")
    dovecot_uidls = [line.split()[1].decode() for line in pop.uidl()[1]]
    pop.quit()
    ours = courriel_view(edge, "monsite0002")
    assert ours["uidvalidity"] == validity
    assert {m["uid"]: m["flags"] for m in ours["messages"]} == {
        uid: [f for f in flags if f != "\\Recent"] for uid, flags in dovecot.items()
    }
    assert [m["uidl"] for m in ours["messages"]] == dovecot_uidls


def _sql(edge: Edge, statement: str) -> None:
    """Test set-up straight into the edge's database (two-factor sign-in is turned on
    in the panel, by the person, which this test does not drive)."""
    url = edge.courriel.env.get("COURRIEL_DATABASE_URL", "")
    if url:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(statement)
        return
    import sqlite3

    with sqlite3.connect(edge.courriel.data / "courriel.sqlite3") as conn:
        conn.execute(statement)


def test_with_two_factor_on_dovecot_takes_app_passwords_only(edge: Edge) -> None:
    made = edge.courriel(
        "user", "app-password", "add", "monsite.be", "monsite0002", "--name", "phone"
    )
    secret = made.out.splitlines()[1].strip()
    edge.imap_login("monsite0002", secret).logout()  # beside the password
    edge.imap_login("monsite0002").logout()
    _sql(
        edge,
        "INSERT INTO accounts_twofactor (mailbox_id, user_id, secret, confirmed_at, last_step, "
        "created_at) SELECT id, NULL, 'test', CURRENT_TIMESTAMP, 0, CURRENT_TIMESTAMP "
        "FROM accounts_mailbox WHERE login = 'monsite0002'",
    )
    try:
        with pytest.raises(imaplib.IMAP4.error):
            edge.imap_login("monsite0002")  # the account password alone: no more
        edge.imap_login("monsite0002", secret).logout()
        edge.imap_login("monsite0002@monsite.be", secret).logout()  # the primary address too
        with pytest.raises(imaplib.IMAP4.error):
            edge.imap_login("monsite0001", secret)  # another mailbox's: never
        with smtplib.SMTP("127.0.0.1", edge.submission, timeout=60) as client:
            client.starttls(context=insecure())
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login("monsite0002", STRONG)
        with smtplib.SMTP("127.0.0.1", edge.submission, timeout=60) as client:
            client.starttls(context=insecure())
            assert client.login("monsite0002", secret)[0] == 235
        listed = edge.courriel(
            "user", "app-password", "list", "monsite.be", "monsite0002", "--json"
        ).json
        app_id = str(listed[0]["id"])
        edge.courriel("user", "app-password", "revoke", "monsite.be", "monsite0002", app_id)
        with pytest.raises(imaplib.IMAP4.error):
            edge.imap_login("monsite0002", secret)
    finally:
        _sql(edge, "DELETE FROM accounts_twofactor")


def test_moving_mail_in_and_out_of_junk_in_dovecot_teaches_rspamd(
    edge: Edge, rspamd: PrivateRspamd
) -> None:
    """As with Courriel's own IMAP server: into Junk is spam, out of Junk is ham, into
    the Trash teaches nothing (Dovecot's imapsieve runs courriel-learn)."""
    for subject in ("junk lesson", "ham lesson", "trash lesson"):
        tag = subject.split()[0]  # each body its own: rspamd learns a text once
        words = " ".join(f"{tag}{n} offer{n * 7} bargain{n * 13}" for n in range(40))
        with edge.smtp() as sender:  # enough words for rspamd's Bayes to learn from
            sender.sendmail(
                "alice@example.org",
                ["info@monsite.be"],
                f"From: alice@example.org\r\nSubject: {subject}\r\n\r\n{words}\r\n".encode(),
            )
        edge.wait_message("monsite0001", f"Subject: {subject}".encode())
    spams, hams = rspamd.learned("BAYES_SPAM"), rspamd.learned("BAYES_HAM")
    client = edge.imap_login("monsite0001")
    try:

        def move(subject: str, source: str, target: str) -> None:
            client.select(source)
            _, found = client.uid("SEARCH", "SUBJECT", f'"{subject}"')
            [uid] = found[0].split()
            assert client.uid("MOVE", uid, target)[0] == "OK"

        move("junk lesson", "INBOX", "Junk")
        wait_until(lambda: rspamd.learned("BAYES_SPAM") > spams, "rspamd to learn spam")
        move("trash lesson", "INBOX", "Junk")
        wait_until(lambda: rspamd.learned("BAYES_SPAM") > spams + 1, "rspamd to learn spam")
        move("trash lesson", "Junk", "Trash")
        move("ham lesson", "INBOX", "Junk")
        wait_until(lambda: rspamd.learned("BAYES_SPAM") > spams + 2, "rspamd to learn spam")
        move("ham lesson", "Junk", "INBOX")
        wait_until(lambda: rspamd.learned("BAYES_HAM") > hams, "rspamd to learn ham")
        assert rspamd.learned("BAYES_HAM") == hams + 1  # the Trash taught nothing
    finally:
        client.logout()


def test_dovecot_sign_ins_go_through_courriels_throttle(edge: Edge) -> None:
    """Courriel's rule through Dovecot's policy service: five wrong passwords from one
    address stop that login from that address only; the user elsewhere gets in; the
    same wrong password again is counted once."""
    outsider, home, typo = "203.0.113.66", "198.51.100.7", "192.0.2.44"
    for n in range(5):
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            edge.imap_login("monsite0001", f"guess number {n}", from_address=outsider)
    with pytest.raises(imaplib.IMAP4.error, match="Too many failed logins"):
        edge.imap_login("monsite0001", from_address=outsider)  # even the right one, now
    edge.imap_login("monsite0001", from_address=home).logout()
    edge.imap_login("monsite0001@monsite.be", from_address=home).logout()

    for _ in range(8):  # a client repeating a stale password counts once
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            edge.imap_login("monsite0001", "the old password", from_address=typo)
    edge.imap_login("monsite0001", from_address=typo).logout()
