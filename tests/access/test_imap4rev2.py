"""IMAP4rev2 (RFC 9051) beside IMAP4rev1: the server offers both; a client that sends
`ENABLE IMAP4rev2` gets RFC 9051's answers on its connection (Appendix A), one
difference of Appendix E per test, and the same commands on a connection that did not
enable it still answer as RFC 3501 does. Dovecot 2.3 has no IMAP4rev2, so the RFC is the
only reference here.

Raw sockets (`tests.access.raw.Client`): what matters is each line as the server writes
it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from tests.access.conftest import Access, message
from tests.access.raw import Client

Connect = Callable[..., Client]


@pytest.fixture
def connect(access: Access) -> Iterator[Connect]:
    """connect(rev2=True): a logged-in client that enabled IMAP4rev2 (False: one that
    did not, an IMAP4rev1 client as every client is today)."""
    opened: list[Client] = []

    def make(rev2: bool = True) -> Client:
        client = Client(access.ports["imap"], access.login, access.password)
        opened.append(client)
        if rev2:
            assert client.ok("ENABLE IMAP4rev2")[0] == "* ENABLED IMAP4rev2"
        return client

    yield make
    for client in opened:
        client.close()


def _untagged(lines: list[str], prefix: str) -> list[str]:
    return [line for line in lines if line.startswith(prefix)]


def _tag(lines: list[str]) -> str:
    return lines[-1].split()[0]


# --- Appendix A and 6.3.1: advertised beside IMAP4rev1, turned on by ENABLE -------------


def test_both_revisions_are_offered_before_and_after_login(access: Access) -> None:
    client = Client(access.ports["imap"])
    assert "IMAP4rev1 IMAP4rev2" in client.greeting
    assert {"IMAP4rev1", "IMAP4rev2"} <= set(client.ok("CAPABILITY")[0].split())
    client.login(access.login, access.password)
    before = client.ok("CAPABILITY")[0]
    assert {"IMAP4rev1", "IMAP4rev2"} <= set(before.split())
    client.ok("ENABLE IMAP4rev2")
    assert client.ok("CAPABILITY")[0] == before  # 6.3.1: ENABLE changes no capability
    client.close()


def test_enable_answers_what_it_turned_on_and_only_once(connect: Connect) -> None:
    client = connect(rev2=False)
    lines = client.ok("ENABLE X-UNKNOWN imap4rev2 CONDSTORE")
    assert lines[0] == "* ENABLED IMAP4rev2 CONDSTORE"  # unknown names are ignored
    assert client.ok("ENABLE IMAP4rev2")[0] == "* ENABLED"  # already on: nothing new
    assert client.ok("ENABLE IMAP4rev2 UTF8=ACCEPT")[0] == "* ENABLED UTF8=ACCEPT"


def test_enable_before_login_is_refused_and_changes_nothing(access: Access) -> None:
    access.deliver(message("Nouveau"))
    client = Client(access.ports["imap"])
    assert client.command("ENABLE IMAP4rev2")[-1].startswith("t1 BAD")  # command-auth only
    client.login(access.login, access.password)
    lines = client.ok("SELECT INBOX")
    assert "* 1 RECENT" in lines  # still IMAP4rev1
    client.close()


@pytest.mark.parametrize(
    "command", ["ENABLE", "ENABLE (IMAP4rev2)", 'ENABLE "IMAP4rev2"', "ENABLE IMAP4rev2 ("]
)
def test_a_malformed_enable_is_bad_and_enables_nothing(connect: Connect, command: str) -> None:
    client = connect(rev2=False)
    assert " BAD " in client.command(command)[-1]
    assert client.ok("ENABLE IMAP4rev2")[0] == "* ENABLED IMAP4rev2"  # was not on


def test_enable_after_select_takes_effect_at_once(access: Access, connect: Connect) -> None:
    """6.3.1: clients must not, servers need not check; we accept it, and from then on
    the connection is IMAP4rev2: no \\Recent, no RECENT, UIDs in unsolicited FETCH."""
    access.deliver(message("Premier"))
    client = connect(rev2=False)
    assert "* 1 RECENT" in client.ok("SELECT INBOX")
    assert client.ok("ENABLE IMAP4rev2")[0] == "* ENABLED IMAP4rev2"
    assert client.ok("FETCH 1 FLAGS")[0] == "* 1 FETCH (FLAGS ())"
    access.deliver(message("Second"))
    lines = client.ok("NOOP")
    assert "* 2 EXISTS" in lines
    assert not _untagged(lines, "* 1 RECENT") and not _untagged(lines, "* 2 RECENT")


# --- E.9, E.10, E.11, E.12: SELECT ---------------------------------------------------------


def test_select_sends_the_mailbox_list_and_no_recent_nor_unseen(
    access: Access, connect: Connect
) -> None:
    access.deliver(message("Nouveau"))
    rev2 = connect()
    lines = rev2.ok("SELECT INBOX")
    assert '* LIST (\\HasNoChildren) "/" INBOX' in lines
    assert not [line for line in lines if "RECENT" in line or "[UNSEEN" in line], lines
    assert "* 1 EXISTS" in lines and lines[-1].endswith("OK [READ-WRITE] SELECT completed.")
    rev2.ok("CREATE Sent/2024")
    lines = rev2.ok("EXAMINE Sent")
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed."
    assert '* LIST (\\HasChildren \\Sent) "/" Sent' in lines
    assert "[READ-ONLY]" in lines[-1]

    rev1 = connect(rev2=False)
    lines = rev1.ok("SELECT INBOX")
    assert "* 1 RECENT" in lines and "* OK [UNSEEN 1] First unseen." in lines
    assert not _untagged(lines, "* LIST")


def test_recent_stays_for_the_next_imap4rev1_session(access: Access, connect: Connect) -> None:
    access.deliver(message("Nouveau"))
    rev2 = connect()
    rev2.ok("SELECT INBOX")
    assert rev2.ok("FETCH 1 FLAGS")[0] == "* 1 FETCH (FLAGS ())"
    access.deliver(message("Encore"))
    lines = rev2.ok("NOOP") + rev2.ok("FETCH 1:* FLAGS")
    assert "* 2 EXISTS" in lines and "* 2 FETCH (FLAGS ())" in lines
    assert not [line for line in lines if "RECENT" in line or "\\Recent" in line], lines
    rev1 = connect(rev2=False)
    lines = rev1.ok("SELECT INBOX")
    assert "* 2 RECENT" in lines  # the IMAP4rev2 session took none of them
    assert "* 1 FETCH (FLAGS (\\Recent))" in rev1.ok("FETCH 1 FLAGS")


# --- E.4, E.12: SEARCH answers ESEARCH, without RECENT, NEW or OLD --------------------------


def test_search_answers_esearch(access: Access, connect: Connect) -> None:
    for subject in ("Un", "Deux", "Trois"):
        access.deliver(message(subject))
    rev2 = connect()
    rev2.ok("SELECT INBOX")
    rev2.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
    lines = rev2.ok("SEARCH UNSEEN")
    assert lines[0] == f'* ESEARCH (TAG "{_tag(lines)}") ALL 1,3'
    assert not _untagged(lines, "* SEARCH")
    lines = rev2.ok("UID SEARCH CHARSET UTF-8 ALL")
    assert lines[0] == f'* ESEARCH (TAG "{_tag(lines)}") UID ALL 1:3'
    lines = rev2.ok('SEARCH SUBJECT "absent"')  # no match: ESEARCH all the same
    assert lines[0] == f'* ESEARCH (TAG "{_tag(lines)}")'
    lines = rev2.ok("SEARCH RETURN (MIN COUNT) UNSEEN")
    assert lines[0] == f'* ESEARCH (TAG "{_tag(lines)}") MIN 1 COUNT 2'
    lines = rev2.ok("SEARCH RETURN (SAVE) SEEN")  # SAVE alone: no answer (6.4.4)
    assert len(lines) == 1
    assert rev2.ok("FETCH $ UID")[0] == "* 2 FETCH (UID 2)"

    rev1 = connect(rev2=False)
    rev1.ok("SELECT INBOX")
    assert rev1.ok("SEARCH UNSEEN")[0] == "* SEARCH 1 3"
    assert rev1.ok('SEARCH SUBJECT "absent"')[0] == "* SEARCH"


@pytest.mark.parametrize(
    "command",
    [
        "SEARCH RECENT",
        "SEARCH NEW",
        "UID SEARCH OLD",
        "SEARCH NOT NEW",
        "SEARCH OR SEEN (UNSEEN RECENT)",
        "SEARCH RETURN (COUNT) NEW",
        "SORT (DATE) UTF-8 RECENT",
        "THREAD REFERENCES UTF-8 NEW",
    ],
)
def test_recent_new_and_old_are_not_search_keys(
    access: Access, connect: Connect, command: str
) -> None:
    access.deliver(message("Nouveau"))
    rev2 = connect()
    rev2.ok("SELECT INBOX")
    assert " BAD " in rev2.command(command)[-1]
    rev1 = connect(rev2=False)
    rev1.ok("SELECT INBOX")
    rev1.ok(command)


# --- E.3, E.12: STATUS DELETED, no STATUS RECENT --------------------------------------------


def test_status_deleted_and_no_status_recent(access: Access, connect: Connect) -> None:
    for subject in ("Un", "Deux", "Trois"):
        access.deliver(message(subject), folder="Archives")
    rev2 = connect()
    rev2.ok("SELECT Archives")
    rev2.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    rev2.ok("UNSELECT")
    lines = rev2.ok("STATUS Archives (MESSAGES DELETED SIZE)")
    assert re.fullmatch(r"\* STATUS Archives \(MESSAGES 3 DELETED 2 SIZE \d+\)", lines[0])
    lines = rev2.ok('LIST "" "Archives" RETURN (STATUS (DELETED UNSEEN))')
    assert lines[1] == "* STATUS Archives (UNSEEN 3 DELETED 2)"
    assert " BAD " in rev2.command("STATUS Archives (MESSAGES RECENT)")[-1]
    assert " BAD " in rev2.command('LIST "" "*" RETURN (STATUS (RECENT))')[-1]

    rev1 = connect(rev2=False)
    assert rev1.ok("STATUS Archives (RECENT)")[0] == "* STATUS Archives (RECENT 3)"
    refused = rev1.command("STATUS Archives (DELETED)")[-1]
    assert refused.endswith("BAD Unknown STATUS item DELETED"), refused


# --- E.15: the predefined keywords -----------------------------------------------------------


def test_predefined_keywords_are_kept(access: Access, connect: Connect) -> None:
    access.deliver(message("Pourriel"))
    rev2 = connect()
    lines = rev2.ok("SELECT INBOX")
    assert any("[PERMANENTFLAGS (" in line and "\\*)" in line for line in lines)
    keywords = "$Forwarded $MDNSent $Junk $NotJunk $Phishing"
    lines = rev2.ok(f"STORE 1 +FLAGS ({keywords})")
    assert _untagged(lines, "* FLAGS (")[0].endswith(f"{keywords})")
    assert lines[-2] == f"* 1 FETCH (FLAGS ({keywords}))"
    lines = rev2.ok("SEARCH KEYWORD $Phishing")
    assert lines[0].endswith("ALL 1")


# --- E.17, E.18, E.19: CHECK removed; RFC822 items and LSUB deprecated but answered ----------


def test_check_is_gone_noop_is_the_way(connect: Connect) -> None:
    rev2 = connect()
    rev2.ok("SELECT INBOX")
    refused = rev2.command("CHECK")[-1]
    assert refused.endswith("BAD CHECK is not in IMAP4rev2: use NOOP."), refused
    rev2.ok("NOOP")
    rev1 = connect(rev2=False)
    rev1.ok("SELECT INBOX")
    rev1.ok("CHECK")


def test_deprecated_items_are_still_answered(access: Access, connect: Connect) -> None:
    access.deliver(message("Ancien"))
    rev2 = connect()
    rev2.ok("SELECT INBOX")
    lines = rev2.ok("FETCH 1 (RFC822.SIZE RFC822.HEADER)")
    assert lines[0].startswith("* 1 FETCH (RFC822.SIZE ")
    assert "RFC822.HEADER {" in lines[0]
    assert rev2.ok('LSUB "" "*"')[-1].endswith("OK LSUB completed.")


# --- E.2: the FETCH side of BINARY, UID EXPUNGE, MOVE with COPYUID (7, 8) --------------------


def test_binary_fetch_uid_expunge_and_move(access: Access, connect: Connect) -> None:
    for subject in ("Un", "Deux", "Trois"):
        access.deliver(
            message(subject, body="Caf=C3=A9", Content_Transfer_Encoding="quoted-printable")
        )
    rev2 = connect()
    rev2.ok("SELECT INBOX")
    lines = rev2.ok("FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
    assert lines[0] == "* 1 FETCH (BINARY.SIZE[1] 7 BINARY[1] ~{7}\r\nCafé\r\n)"
    rev2.ok("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    lines = rev2.ok("UID EXPUNGE 2")
    assert lines[0] == "* 2 EXPUNGE" and len(lines) == 2
    refused = rev2.command("MOVE 1 Nowhere")[-1]
    assert "NO [TRYCREATE]" in refused  # 8: never created on the way
    rev2.ok("CREATE Archives")
    lines = rev2.ok("SEARCH RETURN (SAVE) DELETED")
    lines = rev2.ok("MOVE $ Archives")
    assert re.fullmatch(r"\* OK \[COPYUID \d+ 1 1\] Moved\.", lines[0]), lines
    assert lines[1] == "* 1 EXPUNGE"


# --- E.21: every unsolicited FETCH has the UID ---------------------------------------------


def test_unsolicited_fetch_carries_the_uid(access: Access, connect: Connect) -> None:
    access.deliver(message("Un"))
    access.deliver(message("Deux"))
    rev2, rev1, other = connect(), connect(rev2=False), connect(rev2=False)
    for client in (rev2, rev1, other):
        client.ok("SELECT INBOX")
    other.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
    assert "* 2 FETCH (UID 2 FLAGS (\\Flagged))" in rev2.ok("NOOP")
    fetched = _untagged(rev1.ok("NOOP"), "* 2 FETCH")  # IMAP4rev1: as before, no UID
    assert fetched and fetched[0].startswith("* 2 FETCH (FLAGS (\\Flagged"), fetched


# --- E.16 and 5.1: mailbox names in UTF-8 -------------------------------------------------


def test_mailbox_names_are_utf8(access: Access, connect: Connect) -> None:
    rev2 = connect()
    rev2.ok('CREATE "Été/Réunions"')
    rev2.ok('CREATE "R&D"')
    assert (access.maildir / ".&AMk-t&AOk-.R&AOk-unions").is_dir()  # Dovecot's layout
    assert (access.maildir / ".R&-D").is_dir()
    lines = rev2.ok('LIST "" "*"')  # 8-bit names as literals (valid in both revisions)
    assert '* LIST (\\HasChildren) "/" {5}\r\nÉté' in lines
    assert '* LIST (\\HasNoChildren) "/" {15}\r\nÉté/Réunions' in lines
    assert '* LIST (\\HasNoChildren) "/" R&D' in lines
    selected = rev2.ok('SELECT "Été/Réunions"')
    assert '* LIST (\\HasNoChildren) "/" {15}\r\nÉté/Réunions' in selected
    assert rev2.ok('STATUS "R&D" (MESSAGES)')[0] == "* STATUS R&D (MESSAGES 0)"

    rev1 = connect(rev2=False)
    lines = rev1.ok('LIST "" "*"')
    assert '* LIST (\\HasChildren) "/" &AMk-t&AOk-' in lines
    assert '* LIST (\\HasNoChildren) "/" R&-D' in lines


def test_a_name_not_in_normal_form_c_is_not_created(access: Access, connect: Connect) -> None:
    rev2 = connect()
    decomposed = "E\u0301te\u0301"  # "Été" with combining accents
    refused = rev2.command(f'CREATE "{decomposed}"')[-1]
    assert " NO [CANNOT] " in refused, refused
    rev2.ok("CREATE Ete")
    assert " NO [CANNOT] " in rev2.command(f'RENAME Ete "{decomposed}"')[-1]
    assert not [p for p in access.maildir.iterdir() if p.name.startswith(".E&")]


# --- 6.3.9: LIST of a parent that exists only as a path -----------------------------------


def test_missing_parent_is_nonexistent_and_listed_only_for_hidden_children(
    access: Access, connect: Connect
) -> None:
    access.deliver(message("Rapport"), folder="Projets/2024")  # made by another program
    rev2 = connect()
    lines = rev2.ok('LIST "" "%"')
    assert '* LIST (\\NonExistent \\HasChildren) "/" Projets' in lines
    lines = rev2.ok('LIST "" "*"')
    assert not [line for line in lines if line.endswith('"/" Projets')], lines
    assert '* LIST (\\HasNoChildren) "/" Projets/2024' in lines
    lines = rev2.ok('LIST () "" "%"')  # extended syntax, no RETURN (CHILDREN)
    assert '* LIST (\\NonExistent \\HasChildren) "/" Projets' in lines
    assert " NO [NONEXISTENT] " in rev2.command("SELECT Projets")[-1]

    rev1 = connect(rev2=False)  # as Dovecot, for mbsync and offlineimap
    assert '* LIST (\\Noselect \\HasChildren) "/" Projets' in rev1.ok('LIST "" "*"')


def test_delete_of_a_folder_with_sub_folders_says_haschildren(connect: Connect) -> None:
    rev2 = connect()
    rev2.ok("CREATE Clients")
    rev2.ok("CREATE Clients/ABC")
    assert " NO [HASCHILDREN] " in rev2.command("DELETE Clients")[-1]
    assert " NO [ALREADYEXISTS] " in rev2.command("CREATE Clients")[-1]
    assert " NO [NONEXISTENT] " in rev2.command("DELETE Absent")[-1]
    rev1 = connect(rev2=False)
    assert " NO [INUSE] " in rev1.command("DELETE Clients")[-1]


def test_notify_speaks_utf8_names_too(connect: Connect) -> None:
    """NOTIFY (RFC 5465) in an IMAP4rev2 session: its STATUS lines name folders in
    UTF-8, like every other answer of the session."""
    rev2 = connect()
    rev2.ok('CREATE "Été"')
    lines = rev2.ok("NOTIFY SET STATUS (PERSONAL (MessageNew MessageExpunge))")
    assert any(line.startswith("* STATUS {5}\r\nÉté (MESSAGES 0 ") for line in lines), lines
    assert not [line for line in lines if "&AMk-" in line]


def test_bodystructure_joins_rfc2231_continuations(access: Access, connect: Connect) -> None:
    """E.6 (7.5.2): parameter continuations are decoded, in IMAP4rev2 only."""
    access.deliver(
        message(
            "Menu",
            Content_Type='text/plain; charset=us-ascii; name*0="Rap"; name*1="port.txt"',
            Content_Disposition="attachment; filename*0*=utf-8''Caf%C3%A9; filename*1*=%20menu",
        )
    )
    rev2 = connect()
    rev2.ok("SELECT INBOX")
    structure = rev2.ok("FETCH 1 BODYSTRUCTURE")[0]
    assert '("charset" "us-ascii" "name" "Rapport.txt")' in structure, structure
    assert '("attachment" ("filename*" {10}\r\nCafé menu))' in structure, structure
    rev1 = connect(rev2=False)
    rev1.ok("SELECT INBOX")
    structure = rev1.ok("FETCH 1 BODYSTRUCTURE")[0]
    assert '"name*0" "Rap" "name*1" "port.txt"' in structure, structure
    assert '"filename*0*" "utf-8\'\'Caf%C3%A9"' in structure, structure
