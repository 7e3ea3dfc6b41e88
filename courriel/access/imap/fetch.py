"""FETCH responses: envelope, body structure, sections and partial fetches, built from
the message's bytes as stored (offsets from `mime`, never re-encoded)."""

from __future__ import annotations

import binascii
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass

from courriel.access.imap import addresses, mime, wire
from courriel.access.imap.parser import FetchAtt, Section
from courriel.access.imap.wire import plist, string
from courriel.mailstore.headers import fields, header_end
from courriel.mailstore.message_file import MessageFile

Source = bytes | MessageFile  # a message in memory, or a big one read from its file

NIL = b"NIL"


def _addresses(values: list[str]) -> bytes:
    """An ENVELOPE address list: every occurrence of the field, merged (as Dovecot
    does: a second From is not hidden behind the first)."""
    items = []
    for value in values:
        for addr in addresses.parse(value):
            items.append(
                b"(%s %s %s %s)"
                % (
                    wire.human_string(addr.name),
                    string(addr.route),
                    string(addr.mailbox),
                    string(addr.domain),
                )
            )
    return b"(" + b"".join(items) + b")" if items else NIL


def envelope(part: mime.Part) -> bytes:
    """RFC 3501 ENVELOPE: text fields from their last occurrence, address fields from
    all of them; Sender and Reply-To default to From."""

    def last(name: str) -> str | None:
        found = part.all_fields(name)
        return found[-1] if found else None

    sender = _addresses(part.all_fields("from"))
    field_sender = _addresses(part.all_fields("sender"))
    reply_to = _addresses(part.all_fields("reply-to"))
    return plist(
        [
            wire.nstring_nolf(last("date")),
            wire.human_string(last("subject")),
            sender,
            field_sender if field_sender != NIL else sender,
            reply_to if reply_to != NIL else sender,
            _addresses(part.all_fields("to")),
            _addresses(part.all_fields("cc")),
            _addresses(part.all_fields("bcc")),
            wire.nstring_nolf(last("in-reply-to")),
            wire.nstring_nolf(last("message-id")),
        ]
    )


def envelope_of_header(header: bytes) -> bytes:
    """ENVELOPE from the header alone (the body is never read for it; the folder index
    keeps the result, see `FolderIndex.header_summary`)."""
    end = header_end(header)
    part = mime.Part(0, end, end)
    part.fields = fields(header[:end])
    return envelope(part)


def _params(params: list[tuple[str, str]], joined: bool = False) -> bytes:
    """A parameter list; `joined`: RFC 2231 continuations joined (IMAP4rev2)."""
    if joined:
        params = mime.join_continuations(params)
    if not params:
        return NIL
    return plist(item for key, value in params for item in (string(key), string(value)))


def _disposition(part: mime.Part, joined: bool) -> bytes:
    value = part.field("content-disposition")
    if not value:
        return NIL
    kind, _, params = mime.parse_content_type(value + "/x")
    kind = kind.split(";")[0].strip()
    _, _, params = mime.parse_content_type("x/x;" + value.partition(";")[2])
    return plist([string(kind), _params(params, joined)])


def _language(part: mime.Part) -> bytes:
    """Content-Language as a list of tags, even of one (as Dovecot writes it)."""
    value = part.field("content-language")
    if not value:
        return NIL
    tags = [t.strip() for t in re.sub(r"\([^()]*\)", " ", value).split(",") if t.strip()]
    return plist(string(t) for t in tags) if tags else NIL


def body_structure(data: bytes, part: mime.Part, extended: bool, joined: bool = False) -> bytes:
    """BODY (`extended` False) or BODYSTRUCTURE; `joined`: RFC 2231 parameter
    continuations joined, as RFC 9051 asks (IMAP4rev1 clients get them as stored, as
    from Dovecot)."""
    if part.children:
        items = b"".join(body_structure(data, child, extended, joined) for child in part.children)
        out = [items, string(part.subtype)]
        if extended:
            out += [
                _params(part.params, joined),
                _disposition(part, joined),
                _language(part),
                string(part.field("content-location")),
            ]
        return b"(" + b" ".join(out) + b")"
    encoding = (part.field("content-transfer-encoding") or "7bit").strip()
    size = part.end - part.body_start
    out = [
        string(part.maintype),
        string(part.subtype),
        _params(part.params, joined),
        string(part.field("content-id")),
        string(part.field("content-description")),
        string(encoding),
        str(size).encode(),
    ]
    if part.maintype == "message" and part.subtype == "rfc822" and part.message is not None:
        out += [
            envelope(part.message),
            body_structure(data, part.message, extended, joined),
            str(mime.line_count(data, part.body_start, part.end)).encode(),
        ]
    elif part.maintype == "text":
        out.append(str(mime.line_count(data, part.body_start, part.end)).encode())
    if extended:
        out += [
            string(part.field("content-md5")),
            _disposition(part, joined),
            _language(part),
            string(part.field("content-location")),
        ]
    return plist(out)


def _header_lines(header: bytes, names: tuple[str, ...], exclude: bool) -> bytes:
    wanted = {n.lower() for n in names}
    out = bytearray()
    keep = False
    for line in re.split(rb"(?<=\n)", header):
        if not line or line in (b"\r\n", b"\n"):
            continue
        if line[:1] not in (b" ", b"\t"):
            name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
            keep = (name in wanted) != exclude
        if keep:
            out += line
    return bytes(out) + b"\r\n"


Span = tuple[int, int]


@dataclass(frozen=True)
class Range:
    """Part of a big message's file, sent in chunks rather than read whole."""

    source: MessageFile
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start

    def chunks(self) -> Iterator[bytes]:
        return self.source.chunks(self.start, self.end)


class Base64Range:
    """A base64 part of a big message, decoded as it is sent (BINARY): one pass to
    learn its decoded size, another to send it."""

    def __init__(self, source: MessageFile, start: int, end: int) -> None:
        self.source, self.start, self.end = source, start, end
        self.size = 0
        self.has_nul = False
        for chunk in self.chunks():
            self.size += len(chunk)
            self.has_nul = self.has_nul or b"\0" in chunk

    def __len__(self) -> int:
        return self.size

    def chunks(self) -> Iterator[bytes]:
        carry = b""
        for raw in self.source.chunks(self.start, self.end):
            text = carry + _NOT_BASE64.sub(b"", raw)
            usable = len(text) - len(text) % 4
            carry = text[usable:]
            if usable:
                yield _b64decode(text[:usable])
        if carry:
            yield _b64decode(carry + b"=" * (-len(carry) % 4))


Piece = bytes | Range | Base64Range
SMALL = 64 * 1024  # a span of a big message up to this size is simply read
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=]")


class UnknownEncoding(ValueError):
    """BINARY of a part whose Content-Transfer-Encoding we cannot decode."""


def _b64decode(text: bytes) -> bytes:
    """Lenient base64 (what mail clients produce): padding inside is where it stops."""
    end = text.find(b"=")
    if end >= 0:
        text = text[:end]
        text += b"=" * (-len(text) % 4)
    try:
        return binascii.a2b_base64(text)
    except binascii.Error:
        return binascii.a2b_base64(text[: len(text) - len(text) % 4] or b"")


def binary_item(data: Source, root: mime.Part, att: FetchAtt) -> list[Piece]:
    """RFC 3516 BINARY[part] and BINARY.SIZE[part]: the part with its transfer
    encoding undone; for a multipart or a whole message, every base64 or
    quoted-printable part inside decoded and its header saying `binary`, as Dovecot
    does. A literal8 (`~{n}`) when anything was decoded or NUL bytes are in it."""
    assert att.section is not None
    numbers = att.section.part
    part = mime.find(root, numbers) if numbers else root
    decoded = Decoded()
    if part is not None:
        decoded.add_part(data, part, include_header=not numbers)
    pieces = decoded.pieces
    if att.name == "BINARY.SIZE":
        return [b"%s %d" % (att.label.encode(), sum(len(p) for p in pieces))]
    if att.partial is not None:
        pieces = _window(pieces, *att.partial)
    size = sum(len(p) for p in pieces)
    has_nul = decoded.converted or any(_has_nul(p) for p in pieces)
    marker = b"~" if has_nul else b""
    return [b"%s %s{%d}\r\n" % (att.label.encode(), marker, size), *pieces]


class Decoded:
    """The pieces of a BINARY answer, built part by part."""

    def __init__(self) -> None:
        self.pieces: list[Piece] = []
        self.converted = False

    def add_part(self, data: Source, part: mime.Part, include_header: bool) -> None:
        encoding = _encoding(part)
        converted = encoding in ("base64", "quoted-printable") and not part.children
        if include_header and converted:
            self.pieces.append(_without_cte(data[part.start : part.body_start]))
        elif include_header:
            self.pieces.append(content(data, (part.start, part.body_start)))
        if part.children:
            cursor = part.body_start
            for child in part.children:
                self.pieces.append(content(data, (cursor, child.start)))
                self.add_part(data, child, include_header=True)
                cursor = child.end
            self.pieces.append(content(data, (cursor, part.end)))
            return
        span = (part.body_start, part.end)
        if encoding == "base64":
            self.converted = True
            if isinstance(data, MessageFile) and span[1] - span[0] > SMALL:
                self.pieces.append(Base64Range(data, *span))
            else:
                raw = data[span[0] : span[1]]
                self.pieces.append(_b64decode(_NOT_BASE64.sub(b"", raw)))
        elif encoding == "quoted-printable":
            self.converted = True
            self.pieces.append(quopri.decodestring(data[span[0] : span[1]]))
        elif encoding in ("7bit", "8bit", "binary"):
            self.pieces.append(content(data, span))
        else:
            raise UnknownEncoding(encoding)


def _encoding(part: mime.Part) -> str:
    value = part.field("content-transfer-encoding")
    if value is None:
        return "7bit"
    return value.split(";", 1)[0].strip().lower()


def _without_cte(header: bytes) -> bytes:
    """A part's header with its Content-Transfer-Encoding now `binary`."""
    kept: list[bytes] = []
    skipping = False
    for line in re.split(rb"(?<=\n)", header):
        if not line or line in (b"\r\n", b"\n"):
            continue
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        skipping = line.split(b":", 1)[0].strip().lower() == b"content-transfer-encoding"
        if not skipping:
            kept.append(line)
    return b"".join(kept) + b"Content-Transfer-Encoding: binary\r\n\r\n"


def _has_nul(piece: Piece) -> bool:
    if isinstance(piece, bytes):
        return b"\0" in piece
    if isinstance(piece, Base64Range):
        return piece.has_nul
    return any(b"\0" in chunk for chunk in piece.chunks())


def _window(pieces: list[Piece], origin: int, count: int) -> list[Piece]:
    """The bytes [origin, origin + count) of a sequence of pieces."""
    out: list[Piece] = []
    position = 0
    for piece in pieces:
        length = len(piece)
        start, end = max(origin - position, 0), min(origin + count - position, length)
        position += length
        if start >= end:
            continue
        if isinstance(piece, bytes):
            out.append(piece[start:end])
        elif isinstance(piece, Range):
            out.append(Range(piece.source, piece.start + start, piece.start + end))
        else:  # a window of a big decoded part: rare
            out.append(b"".join(piece.chunks())[start:end])
    return out


def section(data: Source, root: mime.Part, spec: Section) -> bytes | Span:
    """What a BODY[section] designates: a span of the message, or the bytes built for
    HEADER.FIELDS (empty when the part does not exist, like Dovecot)."""
    part = mime.find(root, spec.part) if spec.part else root
    if part is None:
        return b""
    if spec.text == "MIME":
        return (part.start, part.body_start)
    if not spec.text:
        if not spec.part:
            return (0, len(data))
        return (part.body_start, part.end)
    if spec.part:  # HEADER/TEXT of a part: only for an encapsulated message
        if part.message is None:
            return b""
        part = part.message
    if spec.text == "TEXT":
        return (part.body_start, part.end)
    if spec.text == "HEADER":
        return (part.start, part.body_start)
    header = data[part.start : part.body_start]
    return _header_lines(header, spec.fields, spec.text == "HEADER.FIELDS.NOT")


def content(data: Source, span: bytes | Span) -> Piece:
    """The bytes of a span: sliced from a message in memory, a `Range` of a big one."""
    if isinstance(span, bytes):
        return span
    start, end = span
    if isinstance(data, MessageFile) and end - start > SMALL:
        return Range(data, start, end)
    return data[start:end]


def body_item(data: Source, root: mime.Part | None, att: FetchAtt) -> list[Piece]:
    """`BODY[...]<origin> {n}` and its content, or RFC822 / RFC822.HEADER / RFC822.TEXT
    (`root` is None when the whole message is asked for)."""
    span: bytes | Span
    if att.name == "RFC822" or (att.name == "BODY[]" and root is None):
        span = (0, len(data))
    elif att.name == "RFC822.HEADER":
        assert root is not None
        span = (root.start, root.body_start)
    elif att.name == "RFC822.TEXT":
        assert root is not None
        span = (root.body_start, root.end)
    else:
        assert att.section is not None and root is not None
        span = section(data, root, att.section)
    if att.partial is not None:
        origin, count = att.partial
        if isinstance(span, bytes):
            span = span[origin : origin + count]
        else:
            start = min(span[0] + origin, span[1])
            span = (start, min(start + count, span[1]))
    piece = content(data, span)
    label = att.name if att.name.startswith("RFC822") else att.label
    return [b"%s {%d}\r\n" % (label.encode("utf-8"), len(piece)), piece]


# Short items, answered before any content (Dovecot's "buffered" handlers, in the order
# asked); then ENVELOPE, BODY, BODYSTRUCTURE and the contents, in the order asked.
BUFFERED = {"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "MODSEQ", "SAVEDATE"}
_NIL_BODY = b'("text" "plain" NIL NIL NIL "7bit" 0 0)'
_NIL_REPLIES = {
    "ENVELOPE": b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
    "BODY": _NIL_BODY,
    "BODYSTRUCTURE": _NIL_BODY[:-1] + b" NIL NIL NIL NIL)",
}


def in_answer_order(items: list[FetchAtt]) -> list[FetchAtt]:
    """The items of a FETCH without repeats, short ones first (see BUFFERED)."""
    unique: list[FetchAtt] = []
    for item in items:
        if item not in unique:
            unique.append(item)
    return [i for i in unique if i.name in BUFFERED] + [i for i in unique if i.name not in BUFFERED]


def nil_reply(att: FetchAtt) -> bytes:
    """What an item of a message expunged meanwhile is answered with (Dovecot's)."""
    return _NIL_REPLIES.get(att.name, NIL)


def needs_structure(att: FetchAtt) -> bool:
    """Whether the MIME structure must be parsed (not for the whole message)."""
    if att.name in ("BINARY[]", "BINARY.SIZE"):
        return True  # even BINARY[]: every encoded part inside is decoded
    if att.name == "BODY[]":
        assert att.section is not None
        return bool(att.section.part or att.section.text)
    return att.name not in BUFFERED and att.name not in ("RFC822", "ENVELOPE")


def needs_data(att: FetchAtt) -> bool:
    return att.name not in BUFFERED and att.name != "ENVELOPE"


def flags_item(flags: list[str]) -> bytes:
    return b"FLAGS " + plist(f.encode("utf-8") for f in flags)


__all__ = ["body_item", "body_structure", "envelope", "flags_item", "wire"]
