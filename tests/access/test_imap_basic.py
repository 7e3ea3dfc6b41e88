"""IMAP with Python's imaplib: the commands a mail client uses, scenario by scenario."""

from __future__ import annotations

import imaplib
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from courriel.access.imap.mailboxes import IDLE_CHECK
from courriel.mailstore import quota, watch
from courriel.mailstore.uidlist import read as read_uidlist
from tests.access.conftest import Access, message
from tests.fixtures.waiting import wait_until

MULTIPART = (
    b"From: =?utf-8?q?Fr=C3=A9d=C3=A9ric?= <frederic@gmail.com>\r\n"
    b"To: info@monsite.be, Other <other@example.org>\r\n"
    b"Subject: =?utf-8?q?R=C3=A9union?=\r\n"
    b"Date: Thu, 09 Sep 2010 10:00:00 +0200\r\n"
    b"Message-ID: <abc@gmail.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XYZ"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--XYZ\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"See the agenda attached.\r\n"
    b"--XYZ\r\n"
    b"Content-Type: application/pdf; name=agenda.pdf\r\n"
    b"Content-Disposition: attachment; filename=agenda.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--XYZ--\r\n"
)


def connect(access: Access) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", access.ports["imap"], timeout=10)
    client.login(access.login, access.password)
    return client


def test_reads_a_delivered_message_byte_exact(access: Access) -> None:
    data = message("Bienvenue")
    access.deliver(data)
    client = connect(access)
    typ, info = client.select("INBOX")
    assert typ == "OK" and info == [b"1"]
    _typ, fetched = client.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
    assert fetched[0][1] == data
    assert b"RFC822.SIZE %d" % len(data) in fetched[0][0]
    typ, fetched = client.uid("FETCH", "1:*", "(UID FLAGS)")
    assert typ == "OK" and b"UID 1" in fetched[0] and b"\\Recent" in fetched[0]
    client.logout()


def test_login_with_primary_address_and_capabilities(access: Access) -> None:
    client = imaplib.IMAP4("127.0.0.1", access.ports["imap"], timeout=10)
    typ, _ = client.login(access.address, access.password)
    assert typ == "OK"
    typ, caps = client.capability()
    for cap in (
        b"IDLE",
        b"UIDPLUS",
        b"MOVE",
        b"NAMESPACE",
        b"SPECIAL-USE",
        b"LITERAL+",
        b"ENABLE",
        b"ID",
        b"CHILDREN",
        b"QUOTA",
    ):
        assert cap in caps[0].split()
    assert client.namespace()[1] == [b'(("" "/")) NIL NIL']
    typ, _data = client.xatom("ID", "NIL")
    assert typ == "OK"
    assert client.enable("CONDSTORE")[0] == "OK"
    client.logout()


def test_special_folders_hierarchy_and_subscriptions(access: Access) -> None:
    client = connect(access)
    typ, listing = client.list()
    lines = [line.decode() for line in listing]
    assert any("\\Sent" in line and line.endswith('"/" Sent') for line in lines)
    assert any("\\Trash" in line for line in lines) and any("\\Junk" in line for line in lines)
    assert any("\\Drafts" in line for line in lines)
    assert client.create("Archive/2024")[0] == "OK"
    assert client.create("Archive/2024")[0] == "NO"
    lines = [line.decode() for line in client.list()[1]]
    assert '(\\HasChildren) "/" "Archive"' in "\n".join(lines) or any(
        "Archive" in line and "\\HasChildren" in line for line in lines
    )
    assert (access.maildir / ".Archive.2024" / "cur").is_dir()
    assert b"Archive" in b"".join(client.list('""', "%")[1])
    assert client.subscribe("Archive/2024")[0] == "OK"
    assert b"Archive/2024" in b"".join(client.lsub()[1])
    assert client.rename("Archive", "Old")[0] == "OK"
    assert (access.maildir / ".Old.2024").is_dir()
    assert b"Old/2024" in b"".join(client.lsub()[1])
    assert client.delete("Old")[0] == "NO"  # has a sub-folder
    assert client.delete("Old/2024")[0] == "OK"
    assert client.delete("INBOX")[0] == "NO"
    typ, _data = client.create("bad.name")
    assert typ == "NO"
    client.logout()


def test_append_store_search_copy_move_expunge(access: Access) -> None:
    client = connect(access)
    when = imaplib.Time2Internaldate(time.time())
    typ, data = client.append("Sent", "(\\Seen)", when, message("Sent one"))
    assert typ == "OK" and b"APPENDUID" in data[0]
    files = list((access.maildir / ".Sent" / "cur").iterdir())
    assert len(files) == 1 and files[0].name.endswith(":2,S")
    for index in range(5):
        access.deliver(message(f"Message {index}", body=f"body number {index}"))
    access.deliver(MULTIPART)
    client.select("INBOX")
    assert client.search(None, "ALL")[1] == [b"1 2 3 4 5 6"]
    assert client.search(None, "SUBJECT", '"Message 3"')[1] == [b"4"]
    client.literal = "Réunion".encode()  # 8-bit text goes as a literal, never as an atom
    assert client.search("UTF-8", "SUBJECT")[1] == [b"6"]
    assert client.search(None, "BODY", '"number 2"')[1] == [b"3"]
    assert client.search(None, "TEXT", "agenda")[1] == [b"6"]
    assert client.search(None, "FROM", "frederic", "NOT", "SUBJECT", "Message")[1] == [b"6"]
    assert client.search(None, "OR", "SUBJECT", '"Message 0"', "SUBJECT", '"Message 1"')[1] == [
        b"1 2"
    ]
    assert client.search(None, "LARGER", "300", "SENTON", "9-Sep-2010")[1] == [b"6"]
    assert client.search(None, "SINCE", "1-Jan-2000", "2:3")[1] == [b"2 3"]
    assert client.search(None, "HEADER", "Message-ID", "abc@gmail")[1] == [b"6"]
    assert client.search(None, "UNSEEN", "NEW")[1] == [b"1 2 3 4 5 6"]
    assert client.search("KOI8-R", "ALL")[1] == [b"1 2 3 4 5 6"]  # any charset, as Dovecot
    assert client.search("X-NO-SUCH-CHARSET", "ALL")[0] == "NO"
    typ, data = client.store("1:2", "+FLAGS", "(\\Flagged $Important)")
    assert typ == "OK" and b"\\Flagged" in data[0] and b"$Important" in data[0]
    assert client.search(None, "KEYWORD", "$Important")[1] == [b"1 2"]
    assert "0 $Important" in (access.maildir / "dovecot-keywords").read_text()
    assert any(":2,Fa" in f.name for f in (access.maildir / "cur").iterdir())
    typ, data = client._simple_command("UID", "COPY", "1:2", "Junk")
    assert typ == "OK" and b"[COPYUID" in data[-1] and b" 1:2 1:2]" in data[-1]
    typ, data = client.uid("MOVE", "3", "Trash")
    assert typ == "OK"
    assert client.select("INBOX")[1] == [b"5"]
    usage_before = quota.usage(access.maildir)
    size = len(message("Message 0", body="body number 0"))
    client.store("1", "+FLAGS", "\\Deleted")
    typ, data = client.expunge()
    assert typ == "OK" and data == [b"1"]
    assert quota.usage(access.maildir) == (usage_before[0] - size, usage_before[1] - 1)
    assert client.status("Junk", "(MESSAGES UIDNEXT UNSEEN)")[1] == [
        b"Junk (MESSAGES 2 UIDNEXT 3 UNSEEN 2)"
    ]
    client.close()
    client.logout()


def test_fetch_structure_envelope_and_sections(access: Access) -> None:
    access.deliver(MULTIPART)
    client = connect(access)
    client.select("INBOX", readonly=True)
    _typ, data = client.fetch("1", "(ENVELOPE BODYSTRUCTURE INTERNALDATE)")
    text = data[0].decode() if isinstance(data[0], bytes) else data[0][0].decode()
    assert '"=?utf-8?q?R=C3=A9union?="' in text
    assert '("Other" NIL "other" "example.org")' in text
    assert '"mixed" ("boundary" "XYZ")' in text
    assert '("attachment" ("filename" "agenda.pdf"))' in text
    # 0 lines: the part's last line ends at the boundary, whose CRLF is the boundary's
    # (Dovecot counts the same way)
    assert '"text" "plain" ("charset" "utf-8") NIL NIL "7bit" 24 0' in text
    _typ, data = client.fetch(
        "1", "(BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
    )
    parts = [item[1] for item in data if isinstance(item, tuple)]
    assert parts[0] == b"See the agenda attached."  # the CRLF belongs to the boundary
    assert parts[1].startswith(b"Content-Type: application/pdf") and parts[1].endswith(b"\r\n\r\n")
    assert parts[2] == b"Subject: =?utf-8?q?R=C3=A9union?=\r\n\r\n"
    _typ, data = client.fetch("1", "(BODY.PEEK[]<0.4>)")
    assert data[0][1] == b"From" and b"BODY[]<0>" in data[0][0]
    assert client.fetch("1", "(FLAGS)")[1] == [b"1 (FLAGS (\\Recent))"]
    _typ, data = client.fetch("1", "(BODY[TEXT])")  # read-only: \Seen is not set
    assert b"\\Seen" not in b"".join(p if isinstance(p, bytes) else p[0] for p in data)
    client.logout()
    client = connect(access)
    client.select("INBOX")
    _typ, data = client.fetch("1", "(BODY[TEXT])")
    assert b"FLAGS (\\Seen" in b"".join(p if isinstance(p, bytes) else p[0] for p in data)
    client.logout()


def test_idle_hears_new_mail_at_once(access: Access) -> None:
    client = connect(access)
    client.select("INBOX")
    tag = client._new_tag()
    client.send(tag + b" IDLE\r\n")
    assert client.readline().startswith(b"+")
    access.deliver(message("While idling"))
    client.sock.settimeout(5)
    assert client.readline() == b"* 1 EXISTS\r\n"
    client.send(b"DONE\r\n")
    while not (line := client.readline()).startswith(tag):
        pass
    assert b"OK" in line
    client.logout()


def test_quota_from_the_panel(access: Access, mailbox_user) -> None:  # type: ignore[no-untyped-def]
    from courriel.accounts.models import Mailbox

    Mailbox.objects.filter(login=access.login).update(quota=10 * 1024)
    access.deliver(message("Some mail", body="x" * 3000))
    client = connect(access)
    typ, data = client.getquotaroot("INBOX")
    assert typ == "OK"
    flat = b" ".join(d if isinstance(d, bytes) else b" ".join(d) for d in data[0] + data[1])
    assert True
    assert re.search(rb"STORAGE [34] 10", flat), flat
    assert client._simple_command("SETQUOTA", '""', "(STORAGE 1)")[0] == "NO"
    typ, data = client.append("INBOX", None, None, message("Too big", body="y" * 20_000))
    assert typ == "NO" and b"OVERQUOTA" in data[0]
    client.logout()


def test_two_sessions_on_one_mailbox_stay_consistent(access: Access) -> None:
    for index in range(3):
        access.deliver(message(f"M{index}"))
    first, second = connect(access), connect(access)
    first.select("INBOX")
    second.select("INBOX")
    first.store("2", "+FLAGS", "\\Seen")
    second.noop()
    data = second.response("FETCH")[1]
    assert b"2 (FLAGS (\\Seen))" in data, data  # no UID unless CONDSTORE is on (as Dovecot)
    first.store("1", "+FLAGS", "\\Deleted")
    first.expunge()
    second.noop()
    assert second.response("EXPUNGE")[1] == [b"1"]
    access.deliver(message("M3"))
    second.noop()
    assert second.response("EXISTS")[1][-1] == b"3"
    assert second.uid("SEARCH", "ALL")[1] == [b"2 3 4"]
    first.noop()  # a session only searches what it has been told exists
    assert first.uid("SEARCH", "ALL")[1] == [b"2 3 4"]
    # UIDs are Dovecot's: the dovecot-uidlist agrees with what clients saw.
    records = read_uidlist(access.maildir)
    assert records is not None and sorted(records.records.values())[-3:] == [2, 3, 4]
    first.logout()
    second.logout()


def test_message_removed_by_another_process(access: Access) -> None:
    access.deliver(message("Doomed"))
    access.deliver(message("Kept"))
    client = connect(access)
    client.select("INBOX")
    for path in (access.maildir / "cur").iterdir():
        if b"Doomed" in path.read_bytes():
            path.unlink()
    # As Dovecot: the client has not been told of the expunge yet (RFC 3501 5.2), so
    # the message is answered with NIL for its content and OK [EXPUNGEISSUED].
    typ, data = client.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK" and data == [b"1 (BODY[] NIL)"], data
    client.noop()
    assert client.response("EXPUNGE")[1] == [b"1"]
    assert client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1].startswith(
        b"Subject: Kept"
    )
    client.logout()


def test_unselect_examine_and_check(access: Access) -> None:
    access.deliver(message("One"))
    client = connect(access)
    typ, _data = client.select("INBOX", readonly=True)
    assert typ == "OK"
    assert client.store("1", "+FLAGS", "\\Seen")[0] == "OK"  # ignored, as Dovecot does
    assert client.fetch("1", "FLAGS")[1] == [b"1 (FLAGS (\\Recent))"]
    assert client.xatom("CHECK")[0] == "OK"
    assert client.unselect()[0] == "OK"
    client.state = "SELECTED"  # make imaplib send it anyway: nothing is selected any more
    with pytest.raises(imaplib.IMAP4.error, match="BAD.*Select a mailbox first"):
        client.fetch("1", "FLAGS")
    client.logout()


@pytest.mark.parametrize(
    "line",
    [
        b"a1 FETCH 1 (FLAGS",
        b"a2 FETCH 0:5 FLAGS",
        b"a3 FETCH 1,,2 FLAGS",
        b"a4 FETCH 99 FLAGS",
        b"a5 FETCH -1 FLAGS",
        b"a6 SEARCH ((((((",
        b"a7 STORE 1 +FLAGS (\\Bogus)",
        b"a8 NOSUCHCOMMAND",
        b"a9 SELECT \xff\xfe",
        b"b1 UID FETCH 1:* (BODY[1.MIME.TEXT])",
        b"b2 LIST",
        b"",
        b"b3 SEARCH CHARSET",
        b'b4 LOGIN "unterminated',
        b"b5 CREATE &Jjo",
        b"b6 APPEND INBOX (\\Seen) {-5}",
        b"b7 FETCH 4294967296 FLAGS",
    ],
)
def test_bad_input_gets_bad_or_no_never_a_crash(access: Access, line: bytes) -> None:
    access.deliver(message("Present"))
    sock, stream = raw_session(access)
    with sock:
        stream.write(b"y SELECT INBOX\r\n")
        stream.flush()
        while not stream.readline().startswith(b"y OK"):
            pass
        stream.write(line + b"\r\n")
        stream.write(b"z NOOP\r\n")
        stream.flush()
        replies = []
        while True:
            reply = stream.readline()
            replies.append(reply)
            if reply.startswith(b"z ") or not reply:
                break
        if line:
            assert any(re.match(rb"\S+ (BAD|NO) ", r) for r in replies), replies
        assert replies[-1].startswith(b"z OK"), replies


def raw_session(access: Access) -> tuple[socket.socket, BinaryIO]:
    """A logged-in IMAP connection spoken to byte by byte."""
    sock = socket.create_connection(("127.0.0.1", access.ports["imap"]), timeout=10)
    stream = sock.makefile("rwb")
    stream.readline()
    stream.write(f"x LOGIN {access.login} {access.password}\r\n".encode())
    stream.flush()
    assert stream.readline().startswith(b"x OK")
    return sock, stream


def test_huge_literal_is_refused_and_session_goes_on(access: Access) -> None:
    sock, stream = raw_session(access)
    with sock:
        stream.write(b"a APPEND INBOX {99999999999}\r\n")
        stream.flush()
        assert stream.readline().startswith(b"a BAD [TOOBIG]")
        stream.write(b"b APPEND INBOX {999999999999+}\r\n")
        stream.flush()
        assert stream.readline().startswith(b"* BYE [TOOBIG]")


def test_client_vanishing_mid_append_leaves_nothing(access: Access) -> None:
    sock, stream = raw_session(access)
    with sock:
        stream.write(b"a APPEND INBOX {5000}\r\n")
        stream.flush()
        assert stream.readline().startswith(b"+")
        stream.write(b"From: half\r\n\r\nonly part of it")
        stream.flush()
        stream.close()  # the socket really closes once its file object is closed too
    # The server notices the client is gone and removes what it had received.
    wait_until(lambda: not list((access.maildir / "tmp").iterdir()), "an empty tmp/")
    client = connect(access)
    assert client.select("INBOX")[1] == [b"0"]
    client.logout()
    for sub in ("new", "cur", "tmp"):
        assert list((access.maildir / sub).iterdir()) == []


def _deliver_from_another_process(maildir: Path, subject: str) -> None:
    """What Dovecot's LDA or a second Courriel would do: nobody tells our process."""
    code = (
        "import sys; from pathlib import Path; from courriel.mailstore.maildir import deliver; "
        "deliver(Path(sys.argv[1]), sys.argv[2].encode(), durable=False)"
    )
    data = message(subject).decode()
    subprocess.run([sys.executable, "-c", code, str(maildir), data], check=True, timeout=60)


def _idle_until(client: imaplib.IMAP4, wanted: bytes, seconds: float) -> float:
    """Seconds until an IDLE line containing `wanted` arrived."""
    start = time.monotonic()
    client.sock.settimeout(seconds)
    while wanted not in client.readline():
        pass
    return time.monotonic() - start


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "polling"])
def test_idle_hears_at_once_what_another_process_writes(
    access: Access, inotify: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not inotify:  # as on a system without inotify, or past the watch limit
        monkeypatch.setattr(watch, "watch", lambda folder, event: False)
    access.deliver(message("Already there"))
    client = connect(access)
    client.select("INBOX")
    tag = client._new_tag()
    client.send(tag + b" IDLE\r\n")
    assert client.readline().startswith(b"+")
    _deliver_from_another_process(access.maildir, "Written elsewhere")
    # Well before IDLE's periodic look at the folder (IDLE_CHECK, 30 s), with room
    # for a loaded machine: inotify, or the quick poll (watch.POLL_SECONDS) without it.
    assert IDLE_CHECK >= 30
    assert _idle_until(client, b"* 2 EXISTS", 25) < 20
    (first,) = [p for p in (access.maildir / "cur").iterdir() if b"Already" in p.read_bytes()]
    first.rename(first.with_name(first.name.split(":")[0] + ":2,F"))  # a flag, set elsewhere
    assert _idle_until(client, b"\\Flagged", 25) < 20
    client.send(b"DONE\r\n")
    while not (line := client.readline()).startswith(tag):
        pass
    assert b"OK" in line
    client.logout()
