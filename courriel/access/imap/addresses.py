"""RFC 5322 address lists as IMAP needs them: ENVELOPE keeps groups
(`undisclosed-recipients:;` is a group start and a group end), drops comments inside
addresses, and takes the comment after a bare address as its display name; SEARCH FROM,
TO, CC and BCC match the addresses written back in a normal form (`"B. Person"
<b@example.org>`), so `<user (comment)@ (comment) domain.org>` is found as
`user@domain.org`.

A port of Dovecot 2.3's parser (`rfc822-parser.c`, `message-address.c`, with
`fill_missing` as ENVELOPE and SEARCH use it), so that broken headers give the same
answers from both servers; email.utils flattens groups and keeps comments, which is
why it is not used here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

_SPECIALS = set('()<>[]:;@\\,."')


def _atext(char: str) -> bool:
    return char > " " and char != "\x7f" and char not in _SPECIALS


@dataclass
class Address:
    """One address, or a group marker: a group starts with only `mailbox` set (the
    group's name) and ends with everything None."""

    name: str | None = None
    route: str | None = None
    mailbox: str | None = None
    domain: str | None = None
    invalid: bool = False

    @property
    def is_group_marker(self) -> bool:
        return self.domain is None


class _Parser:
    """Dovecot's rfc822_parser: positions in `data`, and the last comment skipped."""

    def __init__(self, data: str) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.last_comment = ""

    def at(self) -> str:
        return self.data[self.pos] if self.pos < self.end else ""

    def skip_comment(self) -> int:
        self.last_comment = ""
        level = 1
        self.pos += 1
        out: list[str] = []
        while self.pos < self.end:
            char = self.data[self.pos]
            if char == "(":
                level += 1
            elif char == ")":
                level -= 1
                if level == 0:
                    self.last_comment = "".join(out)
                    self.pos += 1
                    return 1 if self.pos < self.end else 0
            elif char == "\\" and self.pos + 1 < self.end and self.data[self.pos + 1] not in "\r\n":
                self.pos += 1
                char = self.data[self.pos]
            if char not in "\r\n":
                out.append(char)
            self.pos += 1
        return -1

    def skip_lwsp(self) -> int:
        while self.pos < self.end:
            char = self.data[self.pos]
            if char in " \t\r\n":
                self.pos += 1
                continue
            if char != "(":
                break
            if self.skip_comment() < 0:
                return -1
        return 1 if self.pos < self.end else 0

    def atom(self, out: list[str]) -> int:
        if self.pos >= self.end or not _atext(self.data[self.pos]):
            return -1
        start = self.pos
        self.pos += 1
        while self.pos < self.end and _atext(self.data[self.pos]):
            self.pos += 1
        out.append(self.data[start : self.pos])
        return self.skip_lwsp() if self.pos < self.end else 0

    def dot_atom(self, out: list[str]) -> int:
        if self.pos >= self.end or not _atext(self.data[self.pos]):
            return -1
        start = self.pos
        self.pos += 1
        while self.pos < self.end:
            if _atext(self.data[self.pos]):
                self.pos += 1
                continue
            if start == self.pos:
                return -1
            out.append(self.data[start : self.pos])
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret
            if self.data[self.pos] != ".":
                return 1
            self.pos += 1
            out.append(".")
            if self.skip_lwsp() <= 0:
                return -1
            start = self.pos
        out.append(self.data[start : self.pos])
        return 0

    def quoted_string(self, out: list[str]) -> int:
        self.pos += 1
        while self.pos < self.end:
            char = self.data[self.pos]
            if char == '"':
                self.pos += 1
                return self.skip_lwsp()
            if char == "\\":
                if self.pos + 1 >= self.end:
                    return -1
                if self.data[self.pos + 1] not in "\r\n":
                    self.pos += 1
                    char = self.data[self.pos]
            if char not in "\r\n":
                out.append(char)
            self.pos += 1
        return -1

    def _atom_or_dot(self, out: list[str]) -> int:
        start = self.pos
        while self.pos < self.end and (_atext(self.data[self.pos]) or self.data[self.pos] == "."):
            self.pos += 1
        out.append(self.data[start : self.pos])
        return self.skip_lwsp() if self.pos < self.end else 0

    def phrase(self, out: list[str]) -> int:
        if self.pos >= self.end:
            return 0
        if self.data[self.pos] == ".":
            return -1
        while True:
            quoted = self.data[self.pos] == '"'
            ret = self.quoted_string(out) if quoted else self._atom_or_dot(out)
            if ret <= 0:
                return ret
            char = self.data[self.pos]
            if not _atext(char) and char not in '".':
                break
            out.append(" ")
        return self.skip_lwsp()

    def domain_literal(self, out: list[str]) -> int:
        start = self.pos
        self.pos += 1
        while self.pos < self.end:
            char = self.data[self.pos]
            if char == "[":
                return -1
            if char == "]":
                self.pos += 1
                out.append(self.data[start : self.pos].replace("\r", "").replace("\n", ""))
                return self.skip_lwsp()
            if char == "\\":
                self.pos += 1
            self.pos += 1
        return -1

    def domain(self, out: list[str]) -> int:
        self.pos += 1  # "@"
        if self.skip_lwsp() <= 0:
            return -1
        if self.data[self.pos] == "[":
            return self.domain_literal(out)
        return self.dot_atom(out)


class _AddressList:
    def __init__(self, data: str) -> None:
        self.parser = _Parser(data)
        self.addresses: list[Address] = []
        self.addr = Address()

    def add(self) -> None:
        self.addresses.append(self.addr)
        self.addr = Address()

    def local_part(self) -> int:
        out: list[str] = []
        p = self.parser
        if p.at() == '"':
            ret = p.quoted_string(out)
        else:  # Dovecot's non-strict dots: "a..b" and "a." are accepted
            ret = -1
            while True:
                while p.at() == ".":
                    out.append(".")
                    p.pos += 1
                    if p.pos >= p.end:
                        ret = 0
                        break
                    ret = 1
                if p.pos >= p.end or p.at() == "@":
                    break
                ret = p.atom(out)
                if not (ret > 0 and p.at() == "."):
                    break
        if ret < 0:
            return -1
        self.addr.mailbox = "".join(out)
        return ret

    def domain(self) -> int:
        out: list[str] = []
        ret = self.parser.domain(out)
        if ret < 0:
            return -1
        self.addr.domain = "".join(out)
        return ret

    def domain_list(self) -> int:
        p = self.parser
        parts: list[str] = []
        while True:
            if p.pos >= p.end:
                return 0
            if p.at() != "@":
                break
            out = ["@"]
            ret = p.domain(out)
            parts.append("".join(out))
            if ret <= 0:
                return ret
            while p.skip_lwsp() > 0 and p.at() == ",":
                p.pos += 1
        self.addr.route = ",".join(parts)
        return 1

    def angle_addr(self) -> int:
        p = self.parser
        p.pos += 1  # "<"
        if p.skip_lwsp() <= 0:
            return -1
        if p.at() == "@":
            if self.domain_list() > 0 and p.at() == ":":
                p.pos += 1
            else:
                self.addr.route = "INVALID_ROUTE"
                if p.pos >= p.end:
                    return -1
            if p.skip_lwsp() <= 0:
                return -1
        if p.at() != ">":
            if self.local_part() <= 0:
                return -1
            if p.at() == "@" and self.domain() <= 0:
                return -1
        if p.at() != ">":
            return -1
        p.pos += 1
        return p.skip_lwsp()

    def name_addr(self) -> int:
        p = self.parser
        out: list[str] = []
        if p.phrase(out) <= 0 or p.at() != "<":
            return -1
        self.addr.name = "".join(out) or None
        if self.angle_addr() < 0:
            self.addr.domain = "SYNTAX_ERROR"
            self.addr.invalid = True
        return 1 if p.pos < p.end else 0

    def addr_spec(self) -> int:
        p = self.parser
        p.last_comment = ""
        quoted = p.at() == '"'
        ret = self.local_part()
        ret2 = -2
        if ret <= 0:
            self.addr.invalid = True
        if ret != 0 and p.pos < p.end and p.at() == "@":
            ret2 = self.domain()
            if ret2 <= 0:
                ret = ret2
        if p.last_comment:
            self.addr.name = p.last_comment
        elif ret2 == -2:
            # "user" alone is a mailbox, but followed by more words it was a name
            out = [self.addr.mailbox or "", " "]
            before = len("".join(out))
            p.phrase(out)
            text = "".join(out)
            if len(text) != before:
                self.addr.mailbox = None
                self.addr.name = text
            elif not quoted:
                self.addr.domain = ""
            self.addr.invalid = True
            ret = -1
        return ret

    def fixed(self) -> None:
        if self.addr.mailbox is None:
            self.addr.mailbox = "MISSING_MAILBOX"
            self.addr.invalid = True
        if not self.addr.domain:
            self.addr.domain = "MISSING_DOMAIN"
            self.addr.invalid = True
        self.add()

    def _either(self, first: Callable[[], int], second: Callable[[], int]) -> int:
        """Dovecot's way: try one production; if it fails, start again with the other."""
        start = self.parser.pos
        ret = first()
        if ret < 0:
            self.parser.pos = start
            self.addr = Address()
            ret = second()
        return ret

    def _bare(self) -> int:
        ret = self.addr_spec()
        a = self.addr
        if a.invalid and a.name is None and a.mailbox is not None and a.domain is None:
            a.name, a.mailbox = a.mailbox, None
        return ret

    def mailbox(self) -> int:
        ret = self._either(self.name_addr, self._bare)
        if ret < 0:
            self.addr.invalid = True
        self.fixed()
        return ret

    def group(self) -> int:
        p = self.parser
        out: list[str] = []
        if p.phrase(out) <= 0 or p.at() != ":":
            return -1
        p.pos += 1
        ret = p.skip_lwsp()
        if ret <= 0:
            self.addr.invalid = True
        self.addr.mailbox = "".join(out)
        self.add()
        if ret > 0 and p.at() != ";":
            while True:
                self.mailbox()
                if p.pos >= p.end or p.at() != ",":
                    break
                p.pos += 1
                if p.skip_lwsp() <= 0:
                    ret = -1
                    break
        if ret >= 0:
            if p.pos >= p.end or p.at() != ";":
                ret = -1
            else:
                p.pos += 1
                ret = p.skip_lwsp()
        if ret < 0:
            self.addr.invalid = True
        self.add()
        return 0 if ret == 0 else 1

    def address(self) -> int:
        return self._either(self.group, self.mailbox)

    def parse(self) -> list[Address]:
        p = self.parser
        if p.skip_lwsp() <= 0:
            return []
        for _ in range(10_000):  # bounded, whatever the header
            if self.address() == 0:
                break
            if p.pos >= p.end or p.at() != ",":
                break
            p.pos += 1
            ret = p.skip_lwsp()
            if ret <= 0:
                if ret < 0:
                    self.fixed()
                break
        return self.addresses


def parse(value: str) -> list[Address]:
    """The addresses of an address header's (unfolded) value, groups as markers."""
    return _AddressList(value).parse()


def _maybe_quote(text: str, escape_dot: bool) -> str:
    if all(_atext(c) or (not escape_dot and c == ".") for c in text):
        return text
    if not any(c in '"\\' for c in text):
        return f'"{text}"'
    return '"' + "".join("\\" + c if c in '"\\' else c for c in text) + '"'


def write(addresses: list[Address]) -> str:
    """The normal form Dovecot searches in (`message_address_write`)."""
    out = ""
    first = True
    in_group = False
    for addr in addresses:
        if not first:
            out += ", "
        first = False
        if addr.domain is None:
            if not in_group:
                name = addr.mailbox or ""
                if not name:
                    out += '""'
                else:
                    out += name if "=?" in name else _maybe_quote(name, True)
                out += ": "
                first = True
            else:
                if out.endswith(", "):
                    out = out[:-2]
                elif out.endswith(": "):
                    out = out[:-1]
                out += ";"
            in_group = not in_group
            continue
        if addr.name is not None:
            out += addr.name if "=?" in addr.name else _maybe_quote(addr.name, True)
        mailbox = addr.mailbox or ""
        if addr.route is not None or mailbox or addr.domain:
            if addr.name:
                out += " "
            out += "<"
            if addr.route is not None:
                out += addr.route + ":"
            out += '""' if not mailbox else _maybe_quote(mailbox, False)
            if addr.domain:
                out += "@" + addr.domain
            out += ">"
    return out
