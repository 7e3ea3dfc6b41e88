"""MIME structure of a stored message, as byte offsets into it: what BODYSTRUCTURE
describes and what BODY[1.2.MIME] and friends return, without re-encoding anything
(IMAP serves parts byte for byte as stored)."""

from __future__ import annotations

import itertools
import re

from courriel.mailstore.headers import fields, header_end

MAX_DEPTH = 20
MAX_PARTS = 1000
_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^;=\s"]+)|(=)|(;))', re.S)


def parse_content_type(value: str) -> tuple[str, str, list[tuple[str, str]]]:
    """('text', 'plain', [('charset', 'utf-8')]) from a Content-Type-like value."""
    value = re.sub(r"\([^()]*\)", " ", value)  # comments
    head, _, rest = value.partition(";")
    maintype, _, subtype = head.strip().partition("/")
    params: list[tuple[str, str]] = []
    for item in _split_params(rest):
        name, sep, raw = item.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            continue
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params.append((name, raw))
    return maintype.strip().lower(), subtype.strip().lower(), params


_SECTION = re.compile(r"(.+)\*(\d{1,3})(\*?)")


def join_continuations(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """RFC 2231 parameter continuations joined, as RFC 9051 7.5.2 asks of BODYSTRUCTURE:
    `name*0`, `name*1`... become `name`; when sections are encoded (`name*0*`), their
    %-escapes are decoded in the charset the first one names and the value, in UTF-8,
    becomes `name*`. Other parameters are kept as they are, in order."""
    sections: dict[str, list[tuple[int, bool, str]]] = {}
    order: list[str | tuple[str, str]] = []
    for name, value in params:
        match = _SECTION.fullmatch(name)
        if match is None:
            order.append((name, value))
            continue
        base = match.group(1)
        if base not in sections:
            sections[base] = []
            order.append(base)
        sections[base].append((int(match.group(2)), bool(match.group(3)), value))
    joined: list[tuple[str, str]] = []
    for item in order:
        if isinstance(item, tuple):
            joined.append(item)
            continue
        parts = sorted(sections[item])
        if not any(encoded for _, encoded, _ in parts):
            joined.append((item, "".join(value for _, _, value in parts)))
            continue
        charset = "us-ascii"
        raw = bytearray()
        for position, (_, encoded, value) in enumerate(parts):
            if position == 0 and encoded and value.count("'") >= 2:
                charset, _language, value = value.split("'", 2)
            if encoded:
                raw += re.sub(
                    rb"%([0-9A-Fa-f]{2})",
                    lambda m: bytes([int(m.group(1), 16)]),
                    value.encode("utf-8", "surrogateescape"),
                )
            else:
                raw += value.encode("utf-8", "surrogateescape")
        try:
            text = raw.decode(charset or "us-ascii")
        except (LookupError, UnicodeDecodeError):
            text = raw.decode("latin-1")
        joined.append((item + "*", text))
    return joined


def _split_params(text: str) -> list[str]:
    items, current, quoted, escape = [], [], False, False
    for char in text:
        if escape:
            current.append(char)
            escape = False
        elif char == "\\" and quoted:
            current.append(char)
            escape = True
        elif char == '"':
            quoted = not quoted
            current.append(char)
        elif char == ";" and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [i for i in items if i.strip()]


class Part:
    """One entity: its header [start, body_start) and body [body_start, end)."""

    __slots__ = (
        "body_start",
        "children",
        "end",
        "fields",
        "maintype",
        "message",
        "params",
        "start",
        "subtype",
    )

    def __init__(self, start: int, body_start: int, end: int) -> None:
        self.start = start
        self.body_start = body_start
        self.end = end
        self.fields: list[tuple[str, str]] = []
        self.maintype = "text"
        self.subtype = "plain"
        self.params: list[tuple[str, str]] = []
        self.children: list[Part] = []
        self.message: Part | None = None  # the message inside a message/rfc822 part

    def field(self, name: str) -> str | None:
        for key, value in self.fields:
            if key == name:
                return value
        return None

    def all_fields(self, name: str) -> list[str]:
        return [value for key, value in self.fields if key == name]

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None


def parse(
    data: bytes,
    start: int = 0,
    end: int | None = None,
    default: tuple[str, str] = ("text", "plain"),
    depth: int = 0,
    budget: list[int] | None = None,
) -> Part:
    end = len(data) if end is None else end
    budget = budget if budget is not None else [MAX_PARTS]
    budget[0] -= 1
    body_start = header_end(data, start, end)
    part = Part(start, body_start, end)
    part.fields = fields(data[start:body_start])
    content_type = part.field("content-type")
    if content_type:
        maintype, subtype, params = parse_content_type(content_type)
        if maintype and subtype:
            part.maintype, part.subtype, part.params = maintype, subtype, params
        else:
            part.params = params if maintype == "" else []
    else:
        part.maintype, part.subtype = default
        if default == ("text", "plain"):
            part.params = [("charset", "us-ascii")]
    if depth >= MAX_DEPTH or budget[0] <= 0:
        return part
    if part.maintype == "multipart":
        boundary = part.param("boundary")
        if boundary:
            child_default = ("message", "rfc822") if part.subtype == "digest" else ("text", "plain")
            for child_start, child_end in _split(data, body_start, end, boundary.encode()):
                child = parse(data, child_start, child_end, child_default, depth + 1, budget)
                if child.children and data[child.end - 2 : child.end] == b"--":
                    # A nested multipart ending with its close delimiter keeps that
                    # line's end (which also precedes our next boundary), as in Dovecot.
                    if data[child.end : child.end + 2] == b"\r\n":
                        child.end += 2
                    elif data[child.end : child.end + 1] == b"\n":
                        child.end += 1
                part.children.append(child)
    elif part.maintype == "message" and part.subtype == "rfc822":
        part.message = parse(data, body_start, end, ("text", "plain"), depth + 1, budget)
    return part


def _split(data: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """Body parts between `--boundary` lines (RFC 2046 5.1.1)."""
    delimiter = b"--" + boundary
    bounds: list[tuple[int, int, bool]] = []  # (line start, content start, closing)
    position = start
    while position < end:
        found = data.find(delimiter, position, end)
        if found < 0:
            break
        at_line_start = found == start or data[found - 1 : found] == b"\n"
        after = found + len(delimiter)
        closing = data[after : after + 2] == b"--"
        line_end = data.find(b"\n", after, end)
        line_end = end if line_end < 0 else line_end + 1
        if at_line_start:
            line_start = found
            if found > start and data[found - 2 : found] == b"\r\n":
                line_start = found - 2
            elif found > start:
                line_start = found - 1
            bounds.append((line_start, line_end, closing))
            if closing:
                break
        position = line_end
    parts = []
    for (_, content_start, closing), (next_start, _, _) in itertools.pairwise(bounds):
        if not closing:
            parts.append((content_start, max(content_start, next_start)))
    if bounds and not bounds[-1][2]:  # no closing delimiter: the rest is the last part
        parts.append((bounds[-1][1], end))
    return parts


def find(root: Part, numbers: tuple[int, ...]) -> Part | None:
    """The part that a section number like 1.2.3 designates (RFC 3501 6.4.5)."""
    node = root
    for position, number in enumerate(numbers):
        if position and node.message is not None:
            node = node.message
        if node.children:
            if number > len(node.children):
                return None
            node = node.children[number - 1]
        elif number != 1:
            return None
    return node


def line_count(data: bytes, start: int, end: int) -> int:
    """Lines of a body: its line ends (a last line cut short by the boundary, whose
    CRLF belongs to the boundary, is not counted, as Dovecot counts)."""
    return data.count(b"\n", start, end)
