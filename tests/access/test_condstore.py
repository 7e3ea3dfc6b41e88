"""CONDSTORE (RFC 7162): a client that remembers HIGHESTMODSEQ asks only for what
changed since, stores flags only if nobody changed them meanwhile, and keeps its cache
right across a restart of the server (mod-sequences are kept in `courriel-modseq`)."""

from __future__ import annotations

import re
import socket

import pytest

from courriel.mailstore import index as folder_index
from tests.access.conftest import Access, Service, message


class Raw:
    """An IMAP connection spoken to line by line: every answer is kept whole."""

    def __init__(self, port: int, login: str, password: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.stream = self.sock.makefile("rwb")
        self.stream.readline()
        self.count = 0
        assert self.ok(f'LOGIN {login} "{password}"')

    def command(self, text: str) -> list[bytes]:
        """All the lines of the answer, the tagged one last."""
        self.count += 1
        tag = f"c{self.count}".encode()
        self.stream.write(tag + b" " + text.encode() + b"\r\n")
        self.stream.flush()
        lines = []
        while True:
            line = self.stream.readline()
            assert line, "server closed the connection"
            lines.append(line.rstrip(b"\r\n"))
            if line.startswith(tag + b" "):
                return lines

    def ok(self, text: str) -> list[bytes]:
        lines = self.command(text)
        assert lines[-1].split()[1] == b"OK", lines
        return lines

    def close(self) -> None:
        self.command("LOGOUT")
        self.sock.close()


def highest(lines: list[bytes]) -> int:
    for line in lines:
        found = re.search(rb"HIGHESTMODSEQ (\d+)", line)
        if found:
            return int(found.group(1))
    raise AssertionError(f"no HIGHESTMODSEQ in {lines}")


def modseqs(lines: list[bytes]) -> dict[int, int]:
    """UID -> MODSEQ of the FETCH responses."""
    found = {}
    for line in lines:
        match = re.search(rb"UID (\d+).*MODSEQ \((\d+)\)|MODSEQ \((\d+)\).*UID (\d+)", line)
        if match:
            uid, value = (match.group(1), match.group(2)) if match.group(1) else match.group(4, 3)
            found[int(uid)] = int(value)
    return found


@pytest.fixture
def three(access: Access) -> Raw:
    for number in range(3):
        access.deliver(message(f"Message {number}"))
    return Raw(access.ports["imap"], access.login, access.password)


def test_modseq_grows_with_each_change_and_changedsince_returns_only_those(three: Raw) -> None:
    client = three
    assert b"CONDSTORE" in client.ok("CAPABILITY")[0]
    start = highest(client.ok("SELECT INBOX (CONDSTORE)"))
    before = modseqs(client.ok("UID FETCH 1:* (MODSEQ)"))
    assert sorted(before) == [1, 2, 3] and max(before.values()) <= start

    answer = client.ok("UID STORE 2 +FLAGS (\\Seen)")
    changed = modseqs(answer)  # CONDSTORE on: the STORE answer carries the MODSEQ
    assert changed[2] > start
    assert b"FLAGS (\\Seen" in answer[0]
    assert highest(client.ok("STATUS INBOX (HIGHESTMODSEQ MESSAGES)")) == changed[2]

    since = client.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {start})")
    assert modseqs(since) == {2: changed[2]}  # only what changed, with its MODSEQ
    assert client.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {changed[2]})")[:-1] == []

    found = client.ok(f"UID SEARCH MODSEQ {start + 1}")
    assert found[0] == f"* SEARCH 2 (MODSEQ {changed[2]})".encode()
    assert client.ok('SEARCH MODSEQ "/flags/\\\\seen" all 1')[0].startswith(b"* SEARCH 1 2 3")
    assert client.ok(f"SEARCH MODSEQ {changed[2] + 1}")[0] == b"* SEARCH"
    client.close()


def test_unchangedsince_refuses_what_someone_else_changed(access: Access, three: Raw) -> None:
    client = three
    assert client.ok("ENABLE CONDSTORE")[0] == b"* ENABLED CONDSTORE"
    start = highest(client.ok("SELECT INBOX"))
    other = Raw(access.ports["imap"], access.login, access.password)
    other.ok("SELECT INBOX")
    other.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")  # someone else, meanwhile

    answer = client.command(f"STORE 1:2 (UNCHANGEDSINCE {start}) +FLAGS.SILENT (\\Deleted)")
    assert answer[-1].split()[1:3] == [b"OK", b"[MODIFIED"] and b"MODIFIED 1]" in answer[-1]
    stored = modseqs(answer)  # .SILENT, yet the new MODSEQ of message 2 is told,
    assert sorted(stored) == [1, 2] and stored[2] > start  # and the other's change to 1
    assert any(b"UID 1 " in line and b"\\Flagged" in line for line in answer)
    flags = client.ok("FETCH 1:2 (FLAGS)")
    assert b"\\Deleted" not in flags[0] and b"\\Flagged" in flags[0]
    assert b"\\Deleted" in flags[1]
    # UNCHANGEDSINCE 0 always fails: every message has a mod-sequence.
    assert b"[MODIFIED 3]" in client.command("UID STORE 3 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)")[-1]

    # The other session hears of the change with UID and MODSEQ once it enabled CONDSTORE.
    heard = other.ok("ENABLE CONDSTORE") + other.ok("NOOP")
    assert modseqs(heard) == {2: stored[2]}
    assert any(b"\\Deleted" in line for line in heard)
    other.close()
    client.close()


def test_bad_modifiers_get_bad(three: Raw) -> None:
    client = three
    client.ok("SELECT INBOX")
    for line in (
        "FETCH 1 (FLAGS) (VANISHED)",
        "FETCH 1 (FLAGS) (CHANGEDSINCE -1)",
        "FETCH 1 (FLAGS) (CHANGEDSINCE 99999999999999999999)",
        "STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)",
        "SEARCH MODSEQ",
        'SEARCH MODSEQ "/flags/\\\\seen" nobody 3',
    ):
        assert client.command(line)[-1].split()[1] == b"BAD", line
    client.ok("NOOP")
    client.close()


def test_modseqs_survive_a_new_index_and_see_changes_made_while_away(
    access: Access, three: Raw
) -> None:
    """What a restart does to the storage: the in-memory index is gone and is built
    again from the disk."""
    client = three
    client.ok("SELECT INBOX")
    client.ok("STORE 3 +FLAGS (\\Answered)")
    before = modseqs(client.ok("UID FETCH 1:* (MODSEQ)"))
    top = highest(client.ok("STATUS INBOX (HIGHESTMODSEQ)"))
    client.close()

    folder_index._open.clear()
    client = Raw(access.ports["imap"], access.login, access.password)
    assert highest(client.ok("SELECT INBOX")) == top
    assert modseqs(client.ok("UID FETCH 1:* (MODSEQ)")) == before
    client.close()

    # Another program renames a file in cur/ (new flags) while no index watches.
    folder_index._open.clear()
    (name,) = [p for p in (access.maildir / "cur").iterdir() if ",S=" in p.name][:1]
    name.rename(name.with_name(name.name.split(":")[0] + ":2,F"))
    client = Raw(access.ports["imap"], access.login, access.password)
    after = highest(client.ok("SELECT INBOX"))
    assert after > top
    assert min(modseqs(client.ok("UID FETCH 1:* (MODSEQ)")).values()) > top  # resync all
    client.close()


@pytest.mark.slow
def test_condstore_across_a_restart_of_courriel_serve(service: Service) -> None:
    for number in range(4):
        service.deliver(message(f"Message {number}"))
    client = Raw(service.ports["imap"], service.login, service.password)
    start = highest(client.ok("SELECT INBOX (CONDSTORE)"))
    client.ok("UID STORE 2 +FLAGS (\\Flagged)")
    client.ok("UID STORE 4 +FLAGS (\\Seen)")
    kept = modseqs(client.ok("UID FETCH 1:* (MODSEQ)"))
    top = highest(client.ok("STATUS INBOX (HIGHESTMODSEQ)"))
    client.close()

    service.restart()
    service.deliver(message("Arrived while restarting"))
    client = Raw(service.ports["imap"], service.login, service.password)
    selected = client.ok("SELECT INBOX (CONDSTORE)")
    assert highest(selected) > top  # the new message has a new mod-sequence
    now = modseqs(client.ok("UID FETCH 1:* (MODSEQ)"))
    assert {uid: now[uid] for uid in kept} == kept
    assert now[5] > top
    changed = client.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {start})")
    assert sorted(modseqs(changed)) == [2, 4, 5]
    client.close()
