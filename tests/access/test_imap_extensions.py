"""The extensions Courriel offers where Dovecot 2.3 has nothing to compare with (the
others are proven against Dovecot in `differential/`): CREATE-SPECIAL-USE, APPENDLIMIT,
binary content in APPEND."""

from __future__ import annotations

import imaplib
import re
import socket

from tests.access.conftest import Access, message

# Commands imaplib does not know (it checks the state a command is allowed in).
for _name in ("GETMETADATA", "SETMETADATA"):
    imaplib.Commands.setdefault(_name, ("AUTH", "SELECTED"))


def connect(access: Access) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", access.ports["imap"], timeout=30)
    client.login(access.login, access.password)
    return client


def capabilities(client: imaplib.IMAP4) -> list[str]:
    """After login (imaplib keeps the list it got before)."""
    return client.capability()[1][0].decode().split()


def listed(client: imaplib.IMAP4, *args: str) -> dict[str, str]:
    typ, lines = client.list(*args) if args else client.list()
    assert typ == "OK"
    out = {}
    for line in lines:
        match = re.match(rb'\(([^)]*)\) "/" (.+)', line)
        assert match, line
        out[match.group(2).decode().strip('"')] = match.group(1).decode()
    return out


def test_create_special_use_marks_renames_and_refuses(access: Access) -> None:
    client = connect(access)
    assert "CREATE-SPECIAL-USE" in capabilities(client)
    typ, _ = client._simple_command("CREATE", "Vieux", "(USE (\\Archive))")
    assert typ == "OK"
    assert "\\Archive" in listed(client)["Vieux"]
    typ, data = client._simple_command("GETMETADATA", "Vieux", "/private/specialuse")
    assert typ == "OK"
    assert b"\\Archive" in b"".join(
        x if isinstance(x, bytes) else b"".join(x) for x in client.response("METADATA")[1]
    )
    # \All and \Flagged are virtual folders; unknown attributes are refused alike, and
    # the folder is not created.
    for attribute in ("\\All", "\\Flagged", "\\Bogus"):
        typ, data = client._simple_command("CREATE", "Autre", f"(USE ({attribute}))")
        assert typ == "NO", data
    assert "Autre" not in listed(client)
    # The special use follows a rename and goes with a delete.
    assert client.rename("Vieux", "Ancien")[0] == "OK"
    assert "\\Archive" in listed(client)["Ancien"]
    assert client.delete("Ancien")[0] == "OK"
    assert client.create("Ancien")[0] == "OK"
    assert "\\Archive" not in listed(client)["Ancien"]
    # A special use set through METADATA (RFC 6154 4) shows in LIST too.
    assert (
        client.create(
            "Boite",
        )[0]
        == "OK"
    )
    typ, _ = client._simple_command("SETMETADATA", "Boite", '(/private/specialuse "\\\\Archive")')
    assert typ == "OK"
    assert "\\Archive" in listed(client)["Boite"]
    client.logout()


def test_appendlimit_is_advertised_and_enforced(access: Access) -> None:
    client = connect(access)
    limit = next(c for c in capabilities(client) if c.startswith("APPENDLIMIT="))
    size = int(limit.split("=")[1])
    assert size == access_limit()
    client.logout()
    with socket.create_connection(("127.0.0.1", access.ports["imap"]), timeout=30) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        sock.sendall(f"a LOGIN {access.login} {access.password}\r\n".encode())
        stream.readline()
        sock.sendall(b"b APPEND INBOX {%d}\r\n" % (size + 1))
        answer = stream.readline()
    assert answer.startswith(b"b BAD [TOOBIG]"), answer  # before the client sends it


def access_limit() -> int:
    from courriel.access.auth import AccessSettings
    from courriel.config import get_config

    settings = AccessSettings.from_config(get_config())
    return settings.append_limit or settings.message_size_limit


def test_binary_content_is_refused_text_in_a_literal8_is_stored(access: Access) -> None:
    text = message("Sent as literal8")
    binary = b"From: a@b\r\nSubject: nul\r\n\r\nbinary\0data\r\n"
    with socket.create_connection(("127.0.0.1", access.ports["imap"]), timeout=30) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        sock.sendall(f"a LOGIN {access.login} {access.password}\r\n".encode())
        stream.readline()
        sock.sendall(b"b APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(text), text))
        stored = stream.readline()
        sock.sendall(b"c APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(binary), binary))
        refused = stream.readline()
    assert stored.startswith(b"b OK [APPENDUID"), stored
    assert refused.startswith(b"c NO [UNKNOWN-CTE]"), refused
    assert list((access.maildir / "tmp").iterdir()) == []


def test_utf8_accept_names_mailboxes_in_utf8(access: Access) -> None:
    """RFC 6855: once enabled, mailbox names travel in UTF-8 (kept in modified UTF-7 on
    disk, as Dovecot keeps them); APPEND takes UTF8 (literal8)."""
    with socket.create_connection(("127.0.0.1", access.ports["imap"]), timeout=30) as sock:
        stream = sock.makefile("rb")

        def command(line: bytes) -> list[bytes]:
            sock.sendall(line + b"\r\n")
            tag = line.split(b" ", 1)[0]
            answer = []
            while True:
                got = stream.readline()
                match = re.search(rb"\{(\d+)\}\r\n$", got)
                if match:
                    got += stream.read(int(match.group(1))) + stream.readline()
                answer.append(got)
                if got.startswith(tag + b" "):
                    return answer

        stream.readline()
        command(f"a LOGIN {access.login} {access.password}".encode())
        assert command(b"b ENABLE UTF8=ACCEPT")[0] == b"* ENABLED UTF8=ACCEPT\r\n"
        assert command('c CREATE "Réunions"'.encode())[-1].startswith(b"c OK")
        assert (access.maildir / ".R&AOk-unions" / "cur").is_dir()
        listing = b"".join(command(b'd LIST "" "R*"'))
        assert "Réunions".encode() in listing and b"&AOk-" not in listing
        data = "From: a@b\r\nSubject: Café\r\n\r\nBonjour\r\n".encode()
        answer = command(b'e APPEND "R\xc3\xa9unions" UTF8 (~{%d+}\r\n%s)' % (len(data), data))
        assert answer[-1].startswith(b"e OK [APPENDUID"), answer
        status = b"".join(command('f STATUS "Réunions" (MESSAGES)'.encode()))
        assert b"MESSAGES 1" in status
        assert command(b"g SELECT R&AOk-unions")[-1].startswith(b"g NO")  # not mUTF-7 now
