"""Fuzzing the protocol parsers: whatever the bytes, a ParseError (tagged BAD) or a
command, never another exception; and MIME structure of any bytes renders."""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courriel.access.imap import fetch, mime
from courriel.access.imap.parser import ParseError, Section, parse

COMMAND_WORDS = [
    b"FETCH",
    b"UID",
    b"STORE",
    b"SEARCH",
    b"LIST",
    b"APPEND",
    b"SELECT",
    b"LOGIN",
    b"STATUS",
    b"COPY",
    b"MOVE",
    b"CREATE",
    b"RENAME",
    b"ID",
    b"ENABLE",
    b"AUTHENTICATE",
    b"SETQUOTA",
    b"BODY.PEEK[",
    b"HEADER.FIELDS",
    b"(",
    b")",
    b"[",
    b"]",
    b"<0.10>",
    b"*",
    b"1:*",
    b"{3}\r\nabc",
    b"{5+}\r\n",
    b'"',
    b"\\",
    b" ",
    b"OR",
    b"NOT",
    b"CHARSET",
    b"+FLAGS",
    b"\\Seen",
    b"1,2:4",
    b"4294967295",
    b"0",
    b"-1",
    b"INBOX",
    b"\xff",
    b"&Jjo-",
    b"NIL",
]

fragments = st.lists(st.one_of(st.sampled_from(COMMAND_WORDS), st.binary(max_size=8)), max_size=25)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(fragments)
def test_imap_parser_never_raises_anything_but_parse_error(parts: list[bytes]) -> None:
    data = b"a1 " + b"".join(parts)
    with contextlib.suppress(ParseError):
        parse(data)


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=300))
def test_imap_parser_on_raw_bytes(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse(data)


MIME_PIECES = [
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"\r\n",
    b"--b\r\n",
    b"--b--\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Subject: x\r\n",
    b"text\r\n",
    b"\n",
    b'Content-Type: text/plain; charset="utf',
    b"Content-Disposition: attachment; filename=a\r\n",
    b'From: <a@b>, "q" <c@d>\r\n',
    b" folded\r\n",
]


@settings(max_examples=800, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(MIME_PIECES), st.binary(max_size=6)), max_size=40),
    st.lists(st.integers(1, 4), max_size=3),
    st.sampled_from(["", "HEADER", "TEXT", "MIME"]),
)
def test_any_message_renders(pieces: list[bytes], part: list[int], text: str) -> None:
    data = b"".join(pieces)
    root = mime.parse(data)
    fetch.body_structure(data, root, True)
    fetch.envelope(root)
    if text == "MIME" and not part:
        text = ""
    fetch.section(data, root, Section(tuple(part), text))


class _Stream:
    """Just enough of a Stream for a session that never reads."""

    tls = False
    tls_context = None
    ip = "127.0.0.1"

    def __init__(self) -> None:
        self.out = bytearray()

    def write(self, data: bytes) -> None:
        self.out += data

    async def drain(self) -> None:
        return None


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=10))
def test_pop3_commands_before_login_always_answer(lines: list[bytes]) -> None:
    from courriel.access.pop3.session import Pop3Session
    from tests.access.conftest import _settings

    stream = _Stream()
    session = Pop3Session(stream, _settings(False))  # type: ignore[arg-type]

    async def run() -> None:
        for line in lines:
            if line.upper().startswith((b"PASS", b"AUTH")):
                continue  # would check a password against the database
            before = len(stream.out)
            await session.execute(line.replace(b"\r", b"").replace(b"\n", b""))
            assert stream.out[before:].startswith((b"+OK", b"-ERR", b"+ "))

    asyncio.run(run())
