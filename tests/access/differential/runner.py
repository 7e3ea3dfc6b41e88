"""The differential harness: one scripted IMAP or POP3 session, played against Courriel
and against a private Dovecot 2.3 on copies of the same Maildir, and the two sets of
answers compared once what may legitimately differ is normalised.

A script (`scripts/*.imap`, `scripts/*.pop3`) is plain text:

    # what it checks (comment lines start with '#')
    @mail INBOX basic.eml          seed: a message (file in `mail/`) into a folder
    @mail Archives/X basic.eml S   ... with Maildir flag letters (then in cur/)
    @folder Projets                seed: an empty folder made by another program
    @big INBOX 200000              seed: a generated message of that many bytes
    @big-mime INBOX 3000000        ... a multipart one with an attachment that big
    @lf INBOX 2000000              ... a file with bare LF line ends (Dovecot's LDA), of
                                   a generated message or of a file in `mail/`
    a SELECT INBOX                 a command on connection 1 (logged in first)
    2> b NOOP                      a command on connection 2
    1< * STATUS Work               on connection 1, what the server sends on its own
                                   (NOTIFY) until a line starts with this, at most
                                   WAIT seconds; only lines of the same kind (here
                                   `* STATUS`) are compared: Dovecot sometimes adds
                                   STATUS of untouched folders after a RENAME
    c APPEND INBOX {file:basic.eml}    a synchronising literal with a file's bytes
    d APPEND INBOX {file+:basic.eml}   the same as a LITERAL+ literal
    e APPEND INBOX {big:150000}        a generated message of that size
    @ordered                       compare untagged answers in order (default: as a
                                   multiset, as servers may order them differently)
    @deviation ab <why>            a command (by tag) whose answers may differ, with the
                                   reason (an RFC Courriel follows where Dovecot does not)

Before any session the seed is given UIDs by our folder index (so `dovecot-uidlist` is
the same on both sides), then copied with its file times for each server.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MAIL = HERE / "mail"
SEED_TIME = 1_700_000_000  # INTERNALDATE of seeded messages: 14-Nov-2023
TIMEOUT = 30.0
UNSOLICITED = "< "  # a step that waits for untagged lines instead of sending a command
WAIT = 10.0

# Capabilities Dovecot 2.3 offers that Courriel deliberately does not (and why): the
# comparison ignores them; everything else must be offered alike.
ONLY_DOVECOT = {
    "LOGIN-REFERRALS": "no referrals: one server per mailbox",
    "SORT=DISPLAY": "Dovecot-specific display sort (RFC 5957), used by no common client",
    "THREAD=REFS": "Dovecot's own threading variant, not an RFC",
    "URL-PARTIAL": "URLAUTH is not offered, so IMAP URLs are only for CATENATE",
    "SNIPPET=FUZZY": "draft extension, superseded by PREVIEW",
    "PREVIEW=FUZZY": "draft extension",
    "PREVIEW": "RFC 8970 is not in the issue's list",
}
# Capabilities Courriel offers that the test Dovecot does not: ignored likewise.
ONLY_COURRIEL = {
    "QUOTA": "the test Dovecot has no quota plugin",
    "QUOTA=RES-STORAGE": "the test Dovecot has no quota plugin",
    "QUOTA=RES-MESSAGE": "the test Dovecot has no quota plugin",
    "APPENDLIMIT=": "RFC 7889, not implemented by Dovecot 2.3",
    "CREATE-SPECIAL-USE": "Dovecot 2.3 takes special uses from its configuration only",
    "IMAP4rev2": "RFC 9051, not implemented by Dovecot 2.3 (tests/access/test_imap4rev2.py)",
}


def _compared_capability(name: str) -> bool:
    return name not in ONLY_DOVECOT and not any(
        name == ours or (ours.endswith("=") and name.startswith(ours)) for ours in ONLY_COURRIEL
    )


@dataclass
class Script:
    path: Path
    seed: list[tuple[str, ...]] = field(default_factory=list)
    steps: list[tuple[int, str]] = field(default_factory=list)  # (connection, line)
    ordered: bool = False
    deviations: dict[str, str] = field(default_factory=dict)  # tag -> reason

    @property
    def protocol(self) -> str:
        return self.path.suffix[1:]


def load(path: Path) -> Script:
    script = Script(path)
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            words = line[1:].split()
            if words[0] == "ordered":
                script.ordered = True
            elif words[0] == "deviation":
                script.deviations[words[1]] = " ".join(words[2:])
            else:
                script.seed.append(tuple(words))
            continue
        connection = 1
        match = re.match(r"(\d+)(>|<) ?(.*)", line)
        if match:
            connection, line = int(match.group(1)), match.group(3)
            if match.group(2) == "<":
                line = UNSOLICITED + line
        script.steps.append((connection, line))
    return script


# --- the seed ------------------------------------------------------------------------------


def big_message(size: int) -> bytes:
    """A plain message of exactly `size` bytes, the same on every run."""
    head = (
        b"From: Big Sender <big@example.org>\r\nTo: info@monsite.be\r\n"
        b"Subject: A big one\r\nDate: Thu, 09 Sep 2010 10:00:00 +0200\r\n"
        b"Message-ID: <big-%d@example.org>\r\n\r\n" % size
    )
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_=+!?\r\n"
    body = (line * (size // len(line) + 1))[: max(0, size - len(head) - 2)]
    return (head + body + b"\r\n")[:size] if size > len(head) + 2 else head


def big_mime_message(size: int) -> bytes:
    """A multipart message with a text part and a base64 attachment of about `size`."""
    import base64

    blob = bytes(range(256)) * (size * 3 // 4 // 256 + 1)
    encoded = base64.encodebytes(blob[: size * 3 // 4]).replace(b"\n", b"\r\n")
    return (
        b"From: Big Sender <big@example.org>\r\nTo: info@monsite.be\r\n"
        b"Subject: A big attachment\r\nDate: Thu, 09 Sep 2010 10:00:00 +0200\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B1"\r\n\r\n'
        b"--B1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        b'--B1\r\nContent-Type: application/octet-stream; name="blob.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--B1--\r\n"
    )


def build_seed(script: Script, maildir: Path) -> None:
    """Write the script's seed into a fresh Maildir (with the special folders, as a
    mailbox Courriel creates) and give every folder its UIDs."""
    from courriel.mailstore import folders
    from courriel.mailstore.index import FolderIndex
    from courriel.mailstore.layout import create_maildir
    from courriel.mailstore.maildir import create_folder, deliver, folder_path

    create_maildir(maildir)
    touched = {""}
    for number, entry in enumerate(script.seed):
        kind, folder = entry[0], entry[1]
        name = "" if folder == "INBOX" else folder
        if kind == "folder":
            create_folder(maildir, name)
            continue
        if kind == "mail":
            data = (MAIL / entry[2]).read_bytes()
            flags = entry[3] if len(entry) > 3 else ""
        elif kind == "big":
            data, flags = big_message(int(entry[2])), ""
        elif kind == "big-mime":
            data, flags = big_mime_message(int(entry[2])), ""
        elif kind == "lf":  # a file as Dovecot's LDA writes it: bare LF line ends
            path = folder_path(maildir, name) / "new" / f"{SEED_TIME + number}.lf{number}.seed"
            raw = (MAIL / entry[2]).read_bytes() if entry[2].endswith(".eml") else None
            if raw is None:
                raw = big_message(int(entry[2])).replace(b"\r\n", b"\n")
            path.write_bytes(raw.replace(b"\r\n", b"\n"))
            os.utime(path, (SEED_TIME + 60 * number,) * 2)
            touched.add(name)
            continue
        else:
            raise ValueError(f"{script.path.name}: unknown seed directive @{kind}")
        if b"\r\n" not in data:
            data = data.replace(b"\n", b"\r\n")
        deliver(
            maildir,
            data,
            folder=name,
            flags=flags,
            mtime=SEED_TIME + 60 * number,
            durable=False,
        )
        touched.add(name)
    for name in folders.list_names(maildir):
        FolderIndex(folder_path(maildir, "" if name == "INBOX" else name), maildir)
    del touched


def copy_seed(seed: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(seed, target, symlinks=True)


# --- playing a script ----------------------------------------------------------------------


class _Inflating:
    """The reading side after COMPRESS DEFLATE (RFC 4978): raw deflate, no header."""

    def __init__(self, sock: socket.socket, rest: bytes) -> None:
        self.sock = sock
        self.inflate = zlib.decompressobj(-15)
        self.buffer = self.inflate.decompress(rest)

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        self.buffer += self.inflate.decompress(data)

    def readline(self) -> bytes:
        while b"\n" not in self.buffer:
            self._more()
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._more()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


class _DeflatingSocket:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deflate = zlib.compressobj(9, zlib.DEFLATED, -15)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH))

    def close(self) -> None:
        self.sock.close()


class Connection:
    def __init__(self, port: int) -> None:
        self.sock: Any = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.file: Any = self.sock.makefile("rb")

    def compress(self) -> None:
        """Both directions deflated from here on (after `OK` to COMPRESS DEFLATE)."""
        raw = self.sock  # nothing else comes before our next command: no buffered input
        self.file = _Inflating(raw, b"")
        self.sock = _DeflatingSocket(raw)

    def line(self) -> bytes:
        line = self.file.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        return line

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


_LITERAL_IN_SCRIPT = re.compile(r"\{(file\+?|big\+?):([^}]+)\}")


def _literal_data(kind: str, value: str) -> bytes:
    if kind.startswith("file"):
        data = (MAIL / value).read_bytes()
        return data if b"\r\n" in data else data.replace(b"\n", b"\r\n")
    return big_message(int(value))


def _read_imap_response(conn: Connection, tag: bytes) -> list[bytes]:
    """Lines up to the tagged one (or a continuation request), literals inlined."""
    lines = []
    while True:
        line = conn.line()
        match = re.search(rb"\{(\d+)\}\r\n$", line)
        while match:
            data = conn.file.read(int(match.group(1)))
            rest = conn.line()
            line = line + data + rest
            match = re.search(rb"\{(\d+)\}\r\n$", rest)
        lines.append(line)
        if line.startswith(tag + b" ") or line.startswith(b"+"):
            return lines


class ImapPlayer:
    def __init__(self, port: int, user: str, password: str) -> None:
        self.port = port
        self.user = user
        self.password = password
        self.connections: dict[int, Connection] = {}
        self.idling: dict[int, bytes] = {}

    def connection(self, number: int) -> tuple[Connection, list[list[bytes]]]:
        opened: list[list[bytes]] = []
        if number not in self.connections:
            conn = Connection(self.port)
            opened.append([conn.line()])
            self.connections[number] = conn
            login = f"L{number} LOGIN {self.user} {self.password}\r\n"
            conn.sock.sendall(login.encode())
            opened.append(_read_imap_response(conn, b"L%d" % number))
        return self.connections[number], opened

    def step(self, number: int, line: str) -> list[bytes]:
        conn, _ = self.connection(number)
        if line.startswith(UNSOLICITED):
            return self.unsolicited(conn, line[len(UNSOLICITED) :].encode())
        tag = line.split(" ", 1)[0].encode()
        pieces = _LITERAL_IN_SCRIPT.split(line)
        # pieces: text, kind, value, text, kind, value, ..., text
        out: list[bytes] = []
        pending = pieces[0].encode()
        for i in range(1, len(pieces), 3):
            kind, value, after = pieces[i], pieces[i + 1], pieces[i + 2]
            data = _literal_data(kind, value)
            plus = kind.endswith("+")
            conn.sock.sendall(pending + b"{%d%s}\r\n" % (len(data), b"+" if plus else b""))
            if not plus:
                answer = _read_imap_response(conn, tag)
                if not answer[-1].startswith(b"+"):
                    return out + answer
                out.append(b"+ (continuation)\r\n")
            conn.sock.sendall(data)
            pending = after.encode()
        conn.sock.sendall(pending + b"\r\n")
        if line.upper().endswith(" IDLE"):
            self.idling[number] = tag
            answer = _read_imap_response(conn, tag)  # until "+ idling"
        elif line.upper() == "DONE":
            answer = _read_imap_response(conn, self.idling.pop(number))
        else:
            answer = _read_imap_response(conn, tag)
        return out + answer

    @staticmethod
    def unsolicited(conn: Connection, prefix: bytes) -> list[bytes]:
        """Untagged lines of the kind of `prefix` the server sends without a command,
        up to the first that starts with `prefix` (at most WAIT seconds)."""
        kind = b" ".join(prefix.split()[:2])
        lines = []
        raw = getattr(conn.sock, "sock", conn.sock)
        raw.settimeout(WAIT)
        try:
            while True:
                line = conn.line()
                if line.startswith(kind):
                    lines.append(line)
                if line.startswith(prefix):
                    return lines
        finally:
            raw.settimeout(TIMEOUT)

    def compress(self, number: int) -> None:
        self.connections[number].compress()

    def close(self) -> None:
        for conn in self.connections.values():
            conn.close()


def seed_values(seed: Path) -> dict[str, str]:
    """What a script may name in braces: {uidvalidity} of the seeded INBOX (the same on
    both servers: they start from one dovecot-uidlist)."""
    from courriel.mailstore import uidlist

    current = uidlist.read(seed)
    return {"uidvalidity": str(current.uidvalidity if current else 0)}


def seeded_validities(seed: Path) -> frozenset[str]:
    """The UIDVALIDITY of every seeded folder: both servers start from the same
    `dovecot-uidlist` files, so these are compared as they are, whatever order the
    folders come in (NOTIFY SET STATUS lists them in each server's own order)."""
    from courriel.mailstore import folders, uidlist
    from courriel.mailstore.maildir import folder_path

    found = set()
    for name in folders.list_names(seed):
        current = uidlist.read(folder_path(seed, "" if name == "INBOX" else name))
        if current:
            found.add(str(current.uidvalidity))
    return frozenset(found)


def play_imap(
    script: Script, port: int, user: str, password: str, values: dict[str, str] | None = None
) -> list[tuple[str, list[bytes]]]:
    player = ImapPlayer(port, user, password)
    transcript: list[tuple[str, list[bytes]]] = []
    try:
        for number, line in script.steps:
            if number not in player.connections:
                player.connection(number)  # greeting and LOGIN: not compared here
            for key, value in (values or {}).items():
                line = line.replace("{" + key + "}", value)
            try:
                answer = player.step(number, line)
            except (ConnectionError, TimeoutError, OSError) as error:
                answer = [f"<connection: {type(error).__name__}>".encode()]
            transcript.append((f"{number}> {line}", answer))
            if line.upper().endswith(" COMPRESS DEFLATE") and answer[-1:] and b" OK" in answer[-1]:
                player.compress(number)
    finally:
        player.close()
    return transcript


_POP3_MULTILINE = {"LIST", "UIDL", "RETR", "TOP", "CAPA"}


def _keeps_text(command: str) -> bool:
    """POP3 answers whose text after +OK is data (STAT, LIST n, UIDL n)."""
    verb, _, argument = command.partition(" ")
    return verb.upper() == "STAT" or (verb.upper() in {"LIST", "UIDL"} and bool(argument.strip()))


_CAPA_ENVIRONMENT = {b"STLS", b"CAPA"}  # TLS is off in the test Dovecot; CAPA lists itself


def _capa_lines(lines: list[bytes]) -> list[bytes]:
    """CAPA answers: the implementation's name and what depends on the test set-up
    removed, the rest compared as a set."""
    body = [
        line
        for line in lines[1:-1]
        if line.split()[0] not in _CAPA_ENVIRONMENT and not line.startswith(b"IMPLEMENTATION ")
    ]
    return [lines[0], *sorted(body), lines[-1]]


def _status_only(line: bytes) -> bytes:
    """+OK / -ERR with its response code, without the human text."""
    match = re.match(rb"(\+OK|-ERR)( \[[^\]]*\])?", line)
    return (match.group(0) if match else line.rstrip()) + b"\r\n"


def play_pop3(script: Script, port: int, user: str, password: str) -> list[tuple[str, list[bytes]]]:
    conn = Connection(port)
    transcript: list[tuple[str, list[bytes]]] = [("greeting", [_status_only(conn.line())])]
    try:
        for _number, line in script.steps:
            text = line.replace("{user}", user).replace("{password}", password)
            conn.sock.sendall(text.encode() + b"\r\n")
            first = conn.line()
            keep = _keeps_text(text) and first.startswith(b"+OK")
            answer = [first if keep else _status_only(first)]
            verb, _, argument = text.partition(" ")
            verb = verb.upper()
            multiline = verb in _POP3_MULTILINE and not (
                verb in {"LIST", "UIDL"} and argument.strip()
            )
            if first.startswith(b"+OK") and multiline:
                while True:
                    more = conn.line()
                    answer.append(more)
                    if more == b".\r\n":
                        break
            if verb == "CAPA" and len(answer) > 2:
                answer = _capa_lines(answer)
            transcript.append((line, answer))
    except (ConnectionError, TimeoutError, OSError) as error:
        transcript.append(("<connection>", [type(error).__name__.encode()]))
    finally:
        conn.close()
    return transcript


# --- normalising ---------------------------------------------------------------------------


_STATUS_TEXT = re.compile(r"^(\S+ (?:OK|NO|BAD|BYE|PREAUTH))( \[[^\]]*\])?.*$", re.S)


class Normaliser:
    """What may differ between two correct servers: the human text after a status,
    capability order, MODSEQ values, the UIDVALIDITY of folders created during the
    script (each server takes its own, so they are numbered by first appearance), the
    INTERNALDATE/SAVEDATE of messages stored during the script, ID."""

    def __init__(self, seeded: frozenset[str] = frozenset()) -> None:
        self.validities: dict[str, str] = {}
        self.seeded = seeded  # the seed's UIDVALIDITY values: the same on both servers

    def validity(self, match: re.Match[str]) -> str:
        value = match.group(2)
        if value in self.seeded:
            return match.group(0)
        label = self.validities.setdefault(value, f"V{len(self.validities) + 1}")
        return f"{match.group(1)}{label}"

    def line(self, raw: bytes) -> str:
        if len(raw) > 4096:  # a big literal: its size and digest say enough
            digest = hashlib.sha256(raw).hexdigest()[:16]
            return f"<{len(raw)} bytes sha256:{digest}>"
        text = raw.decode("utf-8", "replace").rstrip("\r\n ")
        text = _STATUS_TEXT.sub(r"\1\2", text)
        text = re.sub(r"^\+ .*", "+ (continuation)", text)
        text = re.sub(
            r"(CAPABILITY) ([^\]\r\n]*)",
            lambda m: (
                m.group(1)
                + " "
                + " ".join(sorted(c for c in m.group(2).split() if c not in ONLY_DOVECOT))
            ),
            text,
        )
        text = re.sub(r"((?:HIGHEST)?MODSEQ \(?)\d+", r"\1<modseq>", text)
        text = re.sub(r"(\[NOMODSEQ\])", r"\1", text)
        text = re.sub(r"((?:UIDVALIDITY|APPENDUID|COPYUID) )(\d+)", self.validity, text)
        text = re.sub(r"^\* ID .*", "* ID <id>", text)
        now_dates = {time.strftime("%d-%b-%Y", time.localtime(time.time() - d)) for d in (0, 86400)}
        text = re.sub(
            r'((?:INTERNALDATE|SAVEDATE) )"([ \d]\d-\w{3}-\d{4}) [^"]*"',
            lambda m: m.group(0) if m.group(2).strip() not in now_dates else m.group(1) + "<now>",
            text,
        )
        return text


def normalise(
    transcript: list[tuple[str, list[bytes]]], ordered: bool, seeded: frozenset[str] = frozenset()
) -> list[tuple[str, list[str]]]:
    norm = Normaliser(seeded)
    out = []
    for command, lines in transcript:
        texts = [norm.line(line) for line in lines]
        if not ordered and len(texts) > 1:
            texts = sorted(texts[:-1]) + texts[-1:]
        out.append((command, texts))
    return out


# Answers Courriel gives where Dovecot stays silent, because an RFC asks for them.
OURS_ONLY = {
    # RFC 7162 3.1.2.1: a server with persistent mod-sequences MUST send HIGHESTMODSEQ
    # with every SELECT/EXAMINE; Dovecot sends it only once CONDSTORE is enabled.
    "* OK [HIGHESTMODSEQ <modseq>]",
}


# Response codes Courriel adds where Dovecot gives none, because an RFC recommends them.
OUR_CODES = {
    # RFC 5530: NONEXISTENT when the mailbox does not exist, CANNOT for a name or an
    # operation the server cannot accept (Dovecot says both in words)
    "NONEXISTENT",
    "CANNOT",
}


def _without_uid(line: str) -> str:
    """RFC 7162 3.1: once CONDSTORE is enabled, untagged FETCH responses about flag
    changes carry UID and MODSEQ; Dovecot leaves the UID out. Ours without it."""
    if line.startswith("* ") and " FETCH (" in line and "MODSEQ (" in line:
        return re.sub(r"\(UID \d+ (?=MODSEQ)", "(", line)
    return line


def _tolerated(mine: str, dovecot: str) -> str:
    """Our line rewritten as Dovecot's when the only difference is a code we add."""
    match = re.fullmatch(r"(\S+ NO) \[([A-Z-]+)\]", mine)
    if match and match.group(2) in OUR_CODES and dovecot == match.group(1):
        return dovecot
    return mine


def differences(
    ours: list[tuple[str, list[str]]],
    theirs: list[tuple[str, list[str]]],
    deviations: dict[str, str] | None = None,
) -> str:
    """A readable report of the commands whose answers differ ('' when none)."""
    report = []
    for (command, mine), (_, dovecot) in zip(ours, theirs, strict=True):
        tag = command.split("> ", 1)[-1].split(" ", 1)[0]
        if deviations and tag in deviations:
            continue
        extra = [line for line in mine if line in OURS_ONLY and line not in dovecot]
        if extra:
            mine = [line for line in mine if line not in extra]
        if mine and dovecot:
            mine = [*mine[:-1], _tolerated(mine[-1], dovecot[-1])]
        mine = [line if line in dovecot else _without_uid(line) for line in mine]
        if Counter(mine) != Counter(dovecot) or mine[-1:] != dovecot[-1:]:
            report.append(f"--- {command}")
            report += [f"  courriel: {line}" for line in mine]
            report += [f"  dovecot:  {line}" for line in dovecot]
    return "\n".join(report)


def transcript_text(transcript: list[tuple[str, list[str]]]) -> str:
    return "\n".join(
        f"C: {c}\n" + "".join(f"S: {line}\n" for line in lines) for c, lines in transcript
    )


__all__ = ["SEED_TIME", "build_seed", "copy_seed", "differences", "load", "normalise", "os"]
