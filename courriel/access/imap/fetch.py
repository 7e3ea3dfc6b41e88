"""FETCH responses: envelope, body structure, sections and partial fetches, built from
the message's bytes as stored (offsets from `mime`, never re-encoded)."""

from __future__ import annotations

import re

from courriel.access.imap import addresses, mime, wire
from courriel.access.imap.parser import FetchAtt, Section
from courriel.access.imap.wire import plist, string

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


def _params(params: list[tuple[str, str]]) -> bytes:
    if not params:
        return NIL
    return plist(item for key, value in params for item in (string(key), string(value)))


def _disposition(part: mime.Part) -> bytes:
    value = part.field("content-disposition")
    if not value:
        return NIL
    kind, _, params = mime.parse_content_type(value + "/x")
    kind = kind.split(";")[0].strip()
    _, _, params = mime.parse_content_type("x/x;" + value.partition(";")[2])
    return plist([string(kind), _params(params)])


def _language(part: mime.Part) -> bytes:
    value = part.field("content-language")
    if not value:
        return NIL
    tags = [t.strip() for t in value.split(",") if t.strip()]
    return plist(string(t) for t in tags) if len(tags) > 1 else string(tags[0] if tags else None)


def body_structure(data: bytes, part: mime.Part, extended: bool) -> bytes:
    if part.children:
        items = b"".join(body_structure(data, child, extended) for child in part.children)
        out = [items, string(part.subtype)]
        if extended:
            out += [
                _params(part.params),
                _disposition(part),
                _language(part),
                string(part.field("content-location")),
            ]
        return b"(" + b" ".join(out) + b")"
    encoding = (part.field("content-transfer-encoding") or "7bit").strip()
    size = part.end - part.body_start
    out = [
        string(part.maintype),
        string(part.subtype),
        _params(part.params),
        string(part.field("content-id")),
        string(part.field("content-description")),
        string(encoding),
        str(size).encode(),
    ]
    if part.maintype == "message" and part.subtype == "rfc822" and part.message is not None:
        out += [
            envelope(part.message),
            body_structure(data, part.message, extended),
            str(mime.line_count(data, part.body_start, part.end)).encode(),
        ]
    elif part.maintype == "text":
        out.append(str(mime.line_count(data, part.body_start, part.end)).encode())
    if extended:
        out += [
            string(part.field("content-md5")),
            _disposition(part),
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


def section(data: bytes, root: mime.Part, spec: Section) -> bytes:
    """The bytes a BODY[section] designates (empty when the part does not exist, like
    Dovecot)."""
    part = mime.find(root, spec.part) if spec.part else root
    if part is None:
        return b""
    if spec.text == "MIME":
        return data[part.start : part.body_start]
    if not spec.text:
        if not spec.part:
            return data
        return data[part.body_start : part.end]
    if spec.part:  # HEADER/TEXT of a part: only for an encapsulated message
        if part.message is None:
            return b""
        part = part.message
    if spec.text == "TEXT":
        return data[part.body_start : part.end]
    header = data[part.start : part.body_start]
    if spec.text == "HEADER":
        return header
    return _header_lines(header, spec.fields, spec.text == "HEADER.FIELDS.NOT")


def body_item(data: bytes, root: mime.Part | None, att: FetchAtt) -> bytes:
    """`BODY[...]<origin> literal` or RFC822 / RFC822.HEADER / RFC822.TEXT (`root` is
    None when the whole message is asked for)."""
    if att.name == "RFC822":
        return b"RFC822 " + _literal(data)
    if att.name != "BODY[]":
        assert root is not None
    if att.name == "RFC822.HEADER":
        return b"RFC822.HEADER " + _literal(data[root.start : root.body_start])
    if att.name == "RFC822.TEXT":
        return b"RFC822.TEXT " + _literal(data[root.body_start : root.end])
    assert att.section is not None
    content = section(data, root, att.section) if root is not None else data
    if att.partial is not None:
        origin, count = att.partial
        content = content[origin : origin + count]
    return att.label.encode("utf-8") + b" " + _literal(content)


def _literal(content: bytes) -> bytes:
    return b"{%d}\r\n%s" % (len(content), content)


def needs_structure(att: FetchAtt) -> bool:
    """Whether the MIME structure must be parsed (not for the whole message)."""
    if att.name == "BODY[]":
        assert att.section is not None
        return bool(att.section.part or att.section.text)
    return att.name not in {"FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "RFC822", "MODSEQ"}


def needs_data(att: FetchAtt) -> bool:
    return att.name not in {"FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "MODSEQ"}


def flags_item(flags: list[str]) -> bytes:
    return b"FLAGS " + plist(f.encode("utf-8") for f in flags)


__all__ = ["body_item", "body_structure", "envelope", "flags_item", "wire"]
