"""The IMAP command grammar (RFC 3501 section 9, with the extensions we offer), apart
from any socket: `parse` turns one complete command (its line and the literals the
session read for it) into a `Command`, or raises `ParseError` with a message that
becomes a tagged BAD. Never anything else, whatever the bytes (fuzzed in the tests).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

STAR = 0  # "*" in a sequence set: the highest number in use
SAVED = -1  # "$" (SEARCHRES, RFC 5182): the result saved by SEARCH RETURN (SAVE)
MAX_NUMBER = 2**32 - 1
MAX_MODSEQ = 2**63 - 1
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
# Atoms are 7-bit (RFC 3501 ATOM-CHAR): 8-bit text comes quoted or as a literal.
ATOM_SPECIALS = frozenset(b'(){ %*"\\]') | frozenset(range(0x20)) | frozenset(range(0x7F, 0x100))
LITERAL_RE = re.compile(rb"\{(\d{1,20})(\+?)\}$")
_LITERAL = re.compile(rb"~?\{(\d{1,20})\+?\}\r\n")  # "~{": literal8 (RFC 3516)
MAX_DEPTH = 50  # nested parentheses in SEARCH


class ParseError(ValueError):
    def __init__(self, message: str, tag: str = "*") -> None:
        super().__init__(message)
        self.tag = tag


SequenceSet = list[tuple[int, int]]


@dataclass
class Section:
    part: tuple[int, ...] = ()
    text: str = ""  # "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
    fields: tuple[str, ...] = ()


@dataclass
class FetchAtt:
    name: str  # FLAGS, UID, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE,
    # RFC822, RFC822.HEADER, RFC822.TEXT, or BODY[...] (name "BODY[]" with a section)
    section: Section | None = None
    peek: bool = False
    partial: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        if self.section is None:
            return self.name
        s = self.section
        spec = ".".join(str(p) for p in s.part)
        if s.text:
            spec = f"{spec}.{s.text}" if spec else s.text
        if s.fields:  # echoed in upper case, as Dovecot does
            spec += " (" + " ".join(f.upper() for f in s.fields) + ")"
        origin = f"<{self.partial[0]}>" if self.partial else ""
        if self.name == "BINARY.SIZE":
            return f"BINARY.SIZE[{spec}]"
        return f"{'BINARY' if self.name == 'BINARY[]' else 'BODY'}[{spec}]{origin}"

    @property
    def sets_seen(self) -> bool:
        if self.name == "BINARY.SIZE":
            return False
        return (self.section is not None and not self.peek) or self.name in {
            "RFC822",
            "RFC822.TEXT",
        }


@dataclass
class Command:
    tag: str
    name: str
    uid: bool = False
    args: dict[str, Any] = field(default_factory=dict)


class Reader:
    def __init__(self, data: bytes, spools: dict[int, Any] | None = None) -> None:
        self.data = data
        self.pos = 0
        # Literals written to disk as they arrived (APPEND messages): their content is
        # not in `data`; the key is where it would have started.
        self.spools = spools or {}

    # --- low level -------------------------------------------------------------------------

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def take(self, token: bytes) -> bool:
        if self.data[self.pos : self.pos + len(token)].upper() == token:
            self.pos += len(token)
            return True
        return False

    def expect(self, token: bytes, what: str) -> None:
        if not self.take(token):
            raise ParseError(f"Expected {what}")

    def sp(self) -> None:
        self.expect(b" ", "a space")

    def end(self) -> None:
        if not self.at_end():
            raise ParseError("Unexpected characters at the end of the command")

    def atom(self, extra: bytes = b"") -> str:
        start = self.pos
        allowed_extra = set(extra)
        data = self.data
        while self.pos < len(data) and (
            data[self.pos] not in ATOM_SPECIALS or data[self.pos] in allowed_extra
        ):
            self.pos += 1
        if self.pos == start:
            raise ParseError("Expected an atom")
        try:
            return data[start : self.pos].decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("Invalid UTF-8 in the command") from None

    def quoted(self) -> bytes:
        self.expect(b'"', "a quoted string")
        out = bytearray()
        data = self.data
        while True:
            if self.pos >= len(data):
                raise ParseError("Unterminated quoted string")
            char = data[self.pos]
            self.pos += 1
            if char == 0x22:
                return bytes(out)
            if char == 0x5C:
                if self.pos >= len(data) or data[self.pos] not in (0x22, 0x5C):
                    raise ParseError('Only \\\\ and \\" may be escaped in a quoted string')
                char = data[self.pos]
                self.pos += 1
            elif char in (0x0D, 0x0A, 0):
                raise ParseError("Line breaks are not allowed in a quoted string")
            out.append(char)

    def literal(self) -> bytes:
        match = _LITERAL.match(self.data, self.pos)
        if not match:
            raise ParseError("Invalid literal")
        size = int(match.group(1))
        start = match.end()
        if start in self.spools:
            self.pos = start
            return self.spools[start]  # type: ignore[no-any-return]
        if start + size > len(self.data):
            raise ParseError("Literal shorter than announced")
        self.pos = start + size
        return self.data[start : self.pos]

    def string(self) -> bytes:
        char = self.peek()
        if char == 0x22:
            return self.quoted()
        if char in (0x7B, 0x7E):  # {n} or literal8 ~{n}
            return self.literal()
        raise ParseError("Expected a string")

    def astring(self) -> bytes:
        if self.peek() in (0x22, 0x7B):
            return self.string()
        return self.atom(extra=b"]").encode("utf-8")

    def nstring(self) -> bytes | None:
        if self.take(b"NIL"):
            return None
        return self.string()

    def text(self, value: bytes, what: str = "argument") -> str:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError(f"The {what} is not valid UTF-8") from None

    def astr(self, what: str = "argument") -> str:
        return self.text(self.astring(), what)

    def mailbox(self) -> str:
        name = self.text(self.astring(), "mailbox name")
        return "INBOX" if name.upper() == "INBOX" else name

    def number(self, nonzero: bool = False) -> int:
        match = re.compile(rb"\d{1,10}").match(self.data, self.pos)
        if not match:
            raise ParseError("Expected a number")
        self.pos = match.end()
        value = int(match.group())
        if value > MAX_NUMBER or (nonzero and value == 0):
            raise ParseError(f"Number out of range: {value}")
        return value

    def modseq(self) -> int:
        """A mod-sequence value (RFC 7162: up to 2^63 - 1; 0 allowed where it is a
        lower bound)."""
        match = re.compile(rb"\d{1,19}").match(self.data, self.pos)
        if not match or int(match.group()) > MAX_MODSEQ:
            raise ParseError("Expected a mod-sequence (a number below 2^63)")
        self.pos = match.end()
        return int(match.group())

    def paren_list(self, item: Any) -> list[Any]:
        self.expect(b"(", "'('")
        items: list[Any] = []
        if self.take(b")"):
            return items
        while True:
            items.append(item())
            if self.take(b")"):
                return items
            self.sp()

    # --- IMAP values -----------------------------------------------------------------------

    def sequence_set(self) -> SequenceSet:
        if self.take(b"$"):  # RFC 5182 SEARCHRES: the saved result, alone
            return [(SAVED, SAVED)]
        ranges: SequenceSet = []
        while True:
            first = self._seq_number()
            last = self._seq_number() if self.take(b":") else first
            ranges.append((first, last))
            if not self.take(b","):
                return ranges

    def _seq_number(self) -> int:
        if self.take(b"*"):
            return STAR
        return self.number(nonzero=True)

    def flag(self) -> str:
        if self.take(b"\\"):
            if self.take(b"*"):
                return "\\*"
            return "\\" + self.atom()
        return self.atom()

    def flag_list(self) -> list[str]:
        if self.peek() == 0x28:
            return self.paren_list(self.flag)
        flags = [self.flag()]
        while self.take(b" "):
            flags.append(self.flag())
        return flags

    def date(self) -> date:
        raw = self.quoted() if self.peek() == 0x22 else self.atom().encode()
        match = re.fullmatch(rb"(\d{1,2})-([A-Za-z]{3})-(\d{4})", raw)
        if not match or match.group(2).upper().decode() not in MONTHS:
            raise ParseError("Invalid date (expected d-Mon-yyyy, e.g. 1-Feb-2024)")
        try:
            return date(
                int(match.group(3)),
                MONTHS.index(match.group(2).upper().decode()) + 1,
                int(match.group(1)),
            )
        except ValueError:
            raise ParseError("Invalid date") from None

    def date_time(self) -> datetime:
        raw = self.quoted()
        match = re.fullmatch(
            rb"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)", raw
        )
        if not match or match.group(2).upper().decode() not in MONTHS:
            raise ParseError('Invalid date-time (expected "dd-Mon-yyyy hh:mm:ss +zzzz")')
        g = match.groups()
        offset = timedelta(hours=int(g[7]), minutes=int(g[8])) * (-1 if g[6] == b"-" else 1)
        try:
            return datetime(
                int(g[2]),
                MONTHS.index(g[1].upper().decode()) + 1,
                int(g[0]),
                int(g[3]),
                int(g[4]),
                int(g[5]),
                tzinfo=timezone(offset) if offset else UTC,
            )
        except ValueError:
            raise ParseError("Invalid date-time") from None


# --- FETCH ---------------------------------------------------------------------------------

_MACROS = {
    "ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"],
    "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
    "FULL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"],
}
_SIMPLE = {
    "FLAGS",
    "UID",
    "INTERNALDATE",
    "RFC822.SIZE",
    "ENVELOPE",
    "BODYSTRUCTURE",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
    "MODSEQ",
    "SAVEDATE",
}


_FETCH_NAME = re.compile(rb"[A-Za-z0-9.]+")


def _fetch_name(r: Reader) -> str:
    match = _FETCH_NAME.match(r.data, r.pos)
    if not match:
        raise ParseError("Expected a FETCH item")
    r.pos = match.end()
    return match.group().decode("ascii").upper()


def _fetch_att(r: Reader) -> FetchAtt:
    name = _fetch_name(r)
    if name in ("BODY", "BODY.PEEK") and r.peek() == 0x5B:
        r.pos += 1
        section = _section(r)
        r.expect(b"]", "']'")
        partial = None
        if r.take(b"<"):
            origin = r.number()
            r.expect(b".", "'.' in <origin.count>")
            count = r.number(nonzero=True)
            r.expect(b">", "'>'")
            partial = (origin, count)
        return FetchAtt("BODY[]", section, name == "BODY.PEEK", partial)
    if name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE") and r.peek() == 0x5B:  # RFC 3516
        r.pos += 1
        part: list[int] = []
        while not r.take(b"]"):
            if part:
                r.expect(b".", "'.' between part numbers")
            part.append(r.number(nonzero=True))
        partial = None
        if name != "BINARY.SIZE" and r.take(b"<"):
            origin = r.number()
            r.expect(b".", "'.' in <origin.count>")
            count = r.number(nonzero=True)
            r.expect(b">", "'>'")
            partial = (origin, count)
        kind = "BINARY.SIZE" if name == "BINARY.SIZE" else "BINARY[]"
        return FetchAtt(kind, Section(tuple(part)), name == "BINARY.PEEK", partial)
    if name in _SIMPLE or name == "BODY":
        return FetchAtt(name)
    raise ParseError(f"Unknown FETCH item {name}")


def _section(r: Reader) -> Section:
    part: list[int] = []
    while r.peek() is not None and 0x30 <= r.peek() <= 0x39:  # type: ignore[operator]
        part.append(r.number(nonzero=True))
        if not r.take(b"."):
            return Section(tuple(part))
    if r.peek() == 0x5D:
        if part:
            raise ParseError("Invalid section")
        return Section()
    text = r.atom().upper()
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        r.sp()
        fields = r.paren_list(lambda: r.text(r.astring(), "header field name"))
        if not fields:
            raise ParseError("HEADER.FIELDS needs at least one field name")
        return Section(tuple(part), text, tuple(fields))
    if text in ("HEADER", "TEXT") or (text == "MIME" and part):
        return Section(tuple(part), text)
    raise ParseError(f"Invalid section {text}")


def _fetch_args(r: Reader) -> dict[str, Any]:
    r.sp()
    sequence = r.sequence_set()
    r.sp()
    if r.peek() == 0x28:
        items = r.paren_list(lambda: _fetch_att(r))
        if not items:
            raise ParseError("Empty FETCH item list")
    else:
        start = r.pos
        word = _fetch_name(r)
        if word in _MACROS:
            items = [FetchAtt(n) for n in _MACROS[word]]
        else:
            r.pos = start
            items = [_fetch_att(r)]
    changedsince = None
    vanished = False
    if r.take(b" ("):  # RFC 7162: CHANGEDSINCE <modseq> [VANISHED] (QRESYNC)
        while not r.take(b")"):
            if changedsince is not None or vanished:
                r.sp()
            if r.take(b"CHANGEDSINCE "):
                changedsince = r.modseq()
            elif r.take(b"VANISHED"):
                vanished = True
            else:
                raise ParseError("FETCH modifiers are CHANGEDSINCE and VANISHED")
        if vanished and changedsince is None:
            raise ParseError("VANISHED needs CHANGEDSINCE")
    return {"set": sequence, "items": items, "changedsince": changedsince, "vanished": vanished}


# --- SEARCH --------------------------------------------------------------------------------

_FLAG_KEYS = {
    "ANSWERED": ("flag", "\\Answered", True),
    "DELETED": ("flag", "\\Deleted", True),
    "DRAFT": ("flag", "\\Draft", True),
    "FLAGGED": ("flag", "\\Flagged", True),
    "SEEN": ("flag", "\\Seen", True),
    "UNANSWERED": ("flag", "\\Answered", False),
    "UNDELETED": ("flag", "\\Deleted", False),
    "UNDRAFT": ("flag", "\\Draft", False),
    "UNFLAGGED": ("flag", "\\Flagged", False),
    "UNSEEN": ("flag", "\\Seen", False),
    "RECENT": ("recent", True),
    "OLD": ("recent", False),
    "NEW": ("and", [("recent", True), ("flag", "\\Seen", False)]),
    "ALL": ("all",),
    "SAVEDATESUPPORTED": ("all",),  # RFC 8514: every folder has save dates here
}
_SAVED_KEYS = {"SAVEDBEFORE", "SAVEDON", "SAVEDSINCE"}
_STRING_KEYS = {"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"}
_DATE_KEYS = {"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"}


def _search_text(r: Reader, charset: str) -> str:
    """A search string in the command's CHARSET (any Python knows, as Dovecot takes
    any iconv knows); an unknown one is refused by the session with BADCHARSET."""
    raw = r.astring()
    try:
        return raw.decode(charset if _known_charset(charset) else "latin-1")
    except UnicodeDecodeError:
        raise ParseError(f"The search string is not valid {charset}") from None


def _known_charset(charset: str) -> bool:
    try:
        codecs.lookup(charset)
    except LookupError:
        return False
    return True


def _search_key(r: Reader, charset: str, depth: int = 0) -> tuple[Any, ...]:
    if depth > MAX_DEPTH:
        raise ParseError("SEARCH keys nested too deeply")
    char = r.peek()
    if char == 0x28:
        keys = r.paren_list(lambda: _search_key(r, charset, depth + 1))
        if not keys:
            raise ParseError("Empty parenthesized SEARCH key")
        return ("and", keys)
    if char is not None and (0x30 <= char <= 0x39 or char in (0x2A, 0x24)):
        return ("seq", r.sequence_set())
    word = r.atom().upper()
    if word in _FLAG_KEYS:
        return _FLAG_KEYS[word]
    r.sp()
    if word in _STRING_KEYS:
        return ("text", word, _search_text(r, charset))
    if word in ("KEYWORD", "UNKEYWORD"):
        return ("flag", r.flag(), word == "KEYWORD")
    if word == "HEADER":
        name = r.text(r.astring(), "header name")
        r.sp()
        return ("header", name.lower(), _search_text(r, charset))
    if word in _DATE_KEYS:
        return ("date", word, r.date())
    if word in ("LARGER", "SMALLER"):
        return ("size", word, r.number())
    if word in ("OLDER", "YOUNGER"):  # RFC 5032 WITHIN: seconds before now
        return ("within", word, r.number(nonzero=True))
    if word in _SAVED_KEYS:  # RFC 8514 SAVEDATE
        return ("savedate", word, r.date())
    if word == "UID":
        return ("uid", r.sequence_set())
    if word == "MODSEQ":  # RFC 7162: [entry-name entry-type-req] value; one modseq per message
        if r.peek() == 0x22:
            r.quoted()
            r.sp()
            kind = r.atom().lower()
            if kind not in ("priv", "shared", "all"):
                raise ParseError("MODSEQ entry type must be priv, shared or all")
            r.sp()
        return ("modseq", r.modseq())
    if word == "NOT":
        return ("not", _search_key(r, charset, depth + 1))
    if word == "OR":
        first = _search_key(r, charset, depth + 1)
        r.sp()
        return ("or", first, _search_key(r, charset, depth + 1))
    raise ParseError(f"Unknown SEARCH key {word}")


RETURN_OPTIONS = {"MIN", "MAX", "ALL", "COUNT", "SAVE", "CONTEXT", "UPDATE", "PARTIAL"}


def _search_return(r: Reader) -> list[str | tuple[str, tuple[int, int]]] | None:
    """RETURN (options) of ESEARCH (RFC 4731), SEARCHRES (5182), CONTEXT=SEARCH and
    ESORT (5267); None when the command has no RETURN (a plain SEARCH answer)."""
    if not r.take(b"RETURN "):
        return None
    options: list[str | tuple[str, tuple[int, int]]] = []
    r.expect(b"(", "'('")
    while not r.take(b")"):
        if options:
            r.sp()
        option = r.atom().upper()
        if option not in RETURN_OPTIONS:
            raise ParseError(f"Unknown search return option {option}")
        if option == "PARTIAL":  # PARTIAL low:high (positions in the result)
            r.sp()
            low = r.number(nonzero=True)
            r.expect(b":", "':'")
            high = r.number(nonzero=True)
            options.append(("PARTIAL", (min(low, high), max(low, high))))
        else:
            options.append(option)
    r.sp()
    return options


def _search_program(r: Reader, charset: str | None = None) -> dict[str, Any]:
    """[CHARSET x] keys (SEARCH), or charset keys (SORT and THREAD name it always)."""
    if charset is None:
        charset = "UTF-8"
        if r.take(b"CHARSET "):
            charset = r.astr("charset").upper()
            r.sp()
    keys = [_search_key(r, charset)]
    while r.take(b" "):
        keys.append(_search_key(r, charset))
    return {"charset": charset, "known": _known_charset(charset), "keys": ("and", keys)}


def _search_args(r: Reader) -> dict[str, Any]:
    r.sp()
    returns = _search_return(r)
    return {"return": returns, **_search_program(r)}


SORT_KEYS = {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO"}


def _sort_args(r: Reader) -> dict[str, Any]:
    """RFC 5256 SORT [RETURN (...)] (criteria) charset keys (ESORT, RFC 5267)."""
    r.sp()
    returns = _search_return(r)
    criteria: list[tuple[str, bool]] = []
    reverse = False
    for word in r.paren_list(r.atom):
        word = word.upper()
        if word == "REVERSE" and not reverse:
            reverse = True
            continue
        if word not in SORT_KEYS:
            raise ParseError(f"Unknown sort criterion {word}")
        criteria.append((word, reverse))
        reverse = False
    if not criteria or reverse:
        raise ParseError("SORT needs at least one criterion (REVERSE comes before one)")
    r.sp()
    charset = r.astr("charset").upper()
    r.sp()
    return {"return": returns, "criteria": criteria, **_search_program(r, charset)}


def _thread_args(r: Reader) -> dict[str, Any]:
    """RFC 5256 THREAD algorithm charset keys."""
    r.sp()
    algorithm = r.atom().upper()
    if algorithm not in {"REFERENCES", "ORDEREDSUBJECT"}:
        raise ParseError(f"Unknown thread algorithm {algorithm}")
    r.sp()
    charset = r.astr("charset").upper()
    r.sp()
    return {"algorithm": algorithm, **_search_program(r, charset)}


# --- the other commands --------------------------------------------------------------------


def _store_args(r: Reader) -> dict[str, Any]:
    r.sp()
    sequence = r.sequence_set()
    r.sp()
    unchangedsince = None
    if r.take(b"("):
        if not r.take(b"UNCHANGEDSINCE "):
            raise ParseError("The only STORE modifier is UNCHANGEDSINCE")
        unchangedsince = r.modseq()
        r.expect(b")", "')'")
        r.sp()
    mode = "+" if r.take(b"+") else "-" if r.take(b"-") else ""
    r.expect(b"FLAGS", "FLAGS, +FLAGS or -FLAGS")
    silent = r.take(b".SILENT")
    r.sp()
    return {
        "set": sequence,
        "mode": mode,
        "silent": silent,
        "flags": r.flag_list(),
        "unchangedsince": unchangedsince,
    }


def _copy_args(r: Reader) -> dict[str, Any]:
    r.sp()
    sequence = r.sequence_set()
    r.sp()
    return {"set": sequence, "mailbox": r.mailbox()}


def _list_pattern(r: Reader) -> str:
    if r.peek() in (0x22, 0x7B):
        return r.text(r.string(), "pattern")
    return r.atom(extra=b"%*]")


def _list_args(r: Reader, extended: bool) -> dict[str, Any]:
    """LIST [(selection)] reference pattern|(patterns) [RETURN (options)] (RFC 5258),
    or LSUB reference pattern."""
    r.sp()
    selection: list[str] = []
    is_extended = False
    if extended and r.peek() == 0x28:
        selection = [s.upper() for s in r.paren_list(r.atom)]
        is_extended = True
        r.sp()
    reference = r.mailbox() if r.peek() != 0x22 else r.text(r.quoted(), "reference")
    r.sp()
    if extended and r.peek() == 0x28:
        patterns = r.paren_list(lambda: _list_pattern(r))
        if not patterns:
            raise ParseError("Empty pattern list")
        is_extended = True
    else:
        patterns = [_list_pattern(r)]
    returns: list[str] = []
    status: list[str] = []
    if extended and r.take(b" RETURN "):
        is_extended = True
        r.expect(b"(", "'('")
        while not r.take(b")"):
            if returns:
                r.sp()
            option = r.atom().upper()
            if option == "STATUS":  # RFC 5819 LIST-STATUS
                r.sp()
                status = _status_items(r)
            returns.append(option)
    return {
        "reference": reference,
        "patterns": patterns,
        "select": selection,
        "return": returns,
        "status": status,
        "extended": is_extended,
    }


def _append_args(r: Reader) -> dict[str, Any]:
    """APPEND mailbox, then one or more (MULTIAPPEND, RFC 3502) messages, each with
    optional flags and date; the message is a literal (spooled to disk, see
    `classify_literal`)."""
    r.sp()
    mailbox = r.mailbox()
    messages = []
    while r.take(b" "):
        flags: list[str] = []
        when = None
        if r.peek() == 0x28:
            flags = r.paren_list(r.flag)
            r.sp()
        if r.peek() == 0x22:
            when = r.date_time()
            r.sp()
        if r.take(b"CATENATE ("):  # RFC 4469: the message put together from parts
            parts: list[tuple[str, Any]] = []
            while not r.take(b")"):
                if parts:
                    r.sp()
                if r.take(b"TEXT "):
                    parts.append(("TEXT", r.literal()))
                elif r.take(b"URL "):
                    parts.append(("URL", r.astr("URL")))
                else:
                    raise ParseError("CATENATE parts are TEXT literals or URLs")
            if not parts:
                raise ParseError("CATENATE needs at least one part")
            messages.append({"flags": flags, "date": when, "catenate": parts})
            continue
        if r.take(b"UTF8 ("):  # RFC 6855: a message with UTF-8 header fields
            data = r.literal()
            r.expect(b")", "')'")
            messages.append({"flags": flags, "date": when, "data": data})
            continue
        if r.peek() not in (0x7B, 0x7E):  # {n} or literal8 ~{n}
            raise ParseError("APPEND needs the message as a literal")
        messages.append({"flags": flags, "date": when, "data": r.literal()})
    if not messages:
        raise ParseError("APPEND needs a message")
    return {"mailbox": mailbox, "messages": messages}


_APPEND_COMMAND = re.compile(rb"[^ ]+ APPEND ", re.I)
_URL_BEFORE = re.compile(rb"(?:^|[ (])URL $", re.I)


def classify_literal(buffer: bytes, segment_start: int) -> str | None:
    """At a literal announcement (`buffer` ends with `{n}\r\n`): the mailbox of the
    APPEND when this literal is a message's content, else None (a mailbox name, a URL,
    a search string: kept in memory). `segment_start` is where the text after the
    previous literal begins."""
    if not _APPEND_COMMAND.match(buffer):
        return None
    segment = buffer[segment_start : buffer.rfind(b"{")]
    if segment_start == 0 and _APPEND_COMMAND.fullmatch(segment):
        return None  # the mailbox name itself
    if _URL_BEFORE.search(segment):
        return None
    r = Reader(buffer)
    try:
        r.pos = TAG_RE.match(buffer).end()  # type: ignore[union-attr]
        r.sp()
        r.atom()
        r.sp()
        return r.mailbox()
    except (ParseError, AttributeError):
        return None


STATUS_ITEMS = (
    "MESSAGES",
    "RECENT",
    "UIDNEXT",
    "UIDVALIDITY",
    "UNSEEN",
    "DELETED",  # RFC 9051: after ENABLE IMAP4rev2 only (see `rev2`)
    "HIGHESTMODSEQ",
    "SIZE",
)


def _status_items(r: Reader) -> list[str]:
    items = [i.upper() for i in r.paren_list(r.atom)]
    unknown = set(items) - set(STATUS_ITEMS)
    if unknown or not items:
        raise ParseError(f"Unknown STATUS item {' '.join(sorted(unknown)) or '()'}")
    return items


def _status_args(r: Reader) -> dict[str, Any]:
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    return {"mailbox": mailbox, "items": _status_items(r)}


def _id_args(r: Reader) -> dict[str, Any]:
    r.sp()
    if r.take(b"NIL"):
        return {"params": {}}
    values = r.paren_list(r.nstring)
    if len(values) % 2 or len(values) > 60:
        raise ParseError("ID takes up to 30 field/value pairs")
    params = {
        (values[i] or b"").decode("utf-8", "replace")[:30]: (values[i + 1] or b"").decode(
            "utf-8", "replace"
        )[:1024]
        for i in range(0, len(values), 2)
    }
    return {"params": params}


def _select_args(r: Reader) -> dict[str, Any]:
    r.sp()
    mailbox = r.mailbox()
    condstore = False
    qresync = None
    if r.take(b" ("):
        while not r.take(b")"):
            if condstore or qresync:
                r.sp()
            if r.take(b"CONDSTORE"):
                condstore = True
            elif r.take(b"QRESYNC ("):  # RFC 7162: (uidvalidity modseq [known [(seqs uids)]])
                validity = r.number(nonzero=True)
                r.sp()
                modseq = r.modseq()
                known = None
                match = None
                if r.take(b" ") and r.peek() != 0x28:
                    known = r.sequence_set()
                    r.take(b" ")
                if r.peek() == 0x28:
                    r.pos += 1
                    seqs = r.sequence_set()
                    r.sp()
                    uids = r.sequence_set()
                    r.expect(b")", "')'")
                    match = (seqs, uids)
                r.expect(b")", "')'")
                qresync = {
                    "uidvalidity": validity,
                    "modseq": modseq,
                    "known": known,
                    "match": match,
                }
            else:
                raise ParseError("Unsupported SELECT parameter")
    return {"mailbox": mailbox, "condstore": condstore, "qresync": qresync}


def _one_mailbox(r: Reader) -> dict[str, Any]:
    r.sp()
    return {"mailbox": r.mailbox()}


def _create_args(r: Reader) -> dict[str, Any]:
    r.sp()
    mailbox = r.mailbox()
    use: list[str] = []
    if r.take(b" ("):
        r.expect(b"USE ", "USE")
        use = [u for u in r.paren_list(r.flag)]
        r.expect(b")", "')'")
    return {"mailbox": mailbox, "use": use}


def _rename_args(r: Reader) -> dict[str, Any]:
    r.sp()
    old = r.mailbox()
    r.sp()
    return {"old": old, "new": r.mailbox()}


def _login_args(r: Reader) -> dict[str, Any]:
    r.sp()
    user = r.astr("user name")
    r.sp()
    return {"user": user, "password": r.astring().decode("utf-8", "replace")}


def _authenticate_args(r: Reader) -> dict[str, Any]:
    r.sp()
    mechanism = r.atom().upper()
    initial = None
    if r.take(b" "):
        initial = b"=" if r.take(b"=") else r.atom(extra=b"").encode()
    return {"mechanism": mechanism, "initial": initial}


def _enable_args(r: Reader) -> dict[str, Any]:
    capabilities = []
    while r.take(b" "):
        capabilities.append(r.atom().upper())
    if not capabilities:
        raise ParseError("ENABLE needs at least one capability")
    return {"capabilities": capabilities}


def _quota_root(r: Reader) -> dict[str, Any]:
    r.sp()
    return {"root": r.astr("quota root")}


def _setquota_args(r: Reader) -> dict[str, Any]:
    r.sp()
    root = r.astr("quota root")
    r.sp()
    r.paren_list(lambda: r.atom() + (r.sp() or "") + str(r.number()))
    return {"root": root}


def _cancelupdate_args(r: Reader) -> dict[str, Any]:
    """RFC 5267 CANCELUPDATE "tag" ..."""
    tags = []
    while r.take(b" "):
        tags.append(r.text(r.string(), "tag"))
    if not tags:
        raise ParseError("CANCELUPDATE needs the tags of searches")
    return {"tags": tags}


def _compress_args(r: Reader) -> dict[str, Any]:
    r.sp()
    return {"mechanism": r.atom().upper()}


def _entry(r: Reader) -> str:
    """A METADATA entry name (RFC 5464 3.2): /private/... or /shared/..., no wildcards,
    no empty level; compared without case."""
    name = r.astr("entry").lower()
    if (
        not (name.startswith(("/private/", "/shared/")) or name in ("/private", "/shared"))
        or "//" in name
        or name.endswith("/")
        or any(c in name for c in "*%")
        or not name.isascii()
        or any(ord(c) < 0x20 for c in name)
    ):
        raise ParseError(f"Invalid metadata entry name {name[:60]}")
    return name


def _getmetadata_args(r: Reader) -> dict[str, Any]:
    """GETMETADATA [(MAXSIZE n DEPTH 0|1|infinity)] mailbox entry|(entries)."""
    r.sp()
    maxsize = None
    depth = "0"
    if r.peek() == 0x28:
        r.pos += 1
        while not r.take(b")"):
            r.take(b" ")
            option = r.atom().upper()
            r.sp()
            if option == "MAXSIZE":
                maxsize = r.number()
            elif option == "DEPTH":
                depth = r.atom().lower()
                if depth not in ("0", "1", "infinity"):
                    raise ParseError("DEPTH is 0, 1 or infinity")
            else:
                raise ParseError(f"Unknown GETMETADATA option {option}")
        r.sp()
    mailbox = r.mailbox() if r.peek() != 0x22 else r.text(r.quoted(), "mailbox")
    r.sp()
    entries = r.paren_list(lambda: _entry(r)) if r.peek() == 0x28 else [_entry(r)]
    if not entries:
        raise ParseError("GETMETADATA needs entries")
    return {"mailbox": mailbox, "entries": entries, "maxsize": maxsize, "depth": depth}


def _setmetadata_args(r: Reader) -> dict[str, Any]:
    """SETMETADATA mailbox (entry value|NIL ...)."""
    r.sp()
    mailbox = r.mailbox() if r.peek() != 0x22 else r.text(r.quoted(), "mailbox")
    r.sp()
    r.expect(b"(", "'('")
    changes: dict[str, str | None] = {}
    while not r.take(b")"):
        if changes:
            r.sp()
        entry = _entry(r)
        r.sp()
        value = r.nstring()
        changes[entry] = None if value is None else r.text(value, "metadata value")
    if not changes:
        raise ParseError("SETMETADATA needs entries")
    return {"mailbox": mailbox, "changes": changes}


NOTIFY_EVENTS = {  # in RFC 5465's order
    name.upper(): name
    for name in (
        "MessageNew",
        "MessageExpunge",
        "FlagChange",
        "AnnotationChange",
        "MailboxName",
        "SubscriptionChange",
        "MailboxMetadataChange",
        "ServerMetadataChange",
    )
}
NOTIFY_FILTERS = {"SELECTED", "SELECTED-DELAYED", "PERSONAL", "INBOXES", "SUBSCRIBED"}
MAX_NOTIFY_NAMES = 1000  # mailbox names in one NOTIFY (the service refuses over 100)


def _notify_args(r: Reader) -> dict[str, Any]:
    """NOTIFY NONE | NOTIFY SET [STATUS] (filter [mailboxes] events) ... (RFC 5465 8):
    events are NONE or a list of event names, MessageNew of the selected mailbox with
    an optional list of fetch attributes."""
    r.sp()
    action = r.atom().upper()
    if action == "NONE":
        return {"action": "NONE", "status": False, "groups": []}
    if action != "SET":
        raise ParseError("NOTIFY takes SET or NONE")
    r.sp()
    status = False
    if r.peek() != 0x28:
        if r.atom().upper() != "STATUS":
            raise ParseError("Expected STATUS or an event group")
        status = True
        r.sp()
    groups = []
    names = 0
    while True:
        r.expect(b"(", "'(' before an event group")
        kind = r.atom().upper()
        mailboxes: list[str] = []
        if kind in {"SUBTREE", "MAILBOXES"}:
            r.sp()
            mailboxes = r.paren_list(r.mailbox) if r.peek() == 0x28 else [r.mailbox()]
            if not mailboxes:
                raise ParseError(f"{kind} needs at least one mailbox")
            names += len(mailboxes)
            if names > MAX_NOTIFY_NAMES:
                raise ParseError("Too many mailbox names")
        elif kind not in NOTIFY_FILTERS:
            raise ParseError(f"Unknown NOTIFY filter {kind[:40]}")
        r.sp()
        events: list[str] = []
        fetch: list[FetchAtt] = []
        if not r.take(b"NONE"):
            r.expect(b"(", "'(' before the events")
            while True:
                name = NOTIFY_EVENTS.get(r.atom().upper())
                if name is None:
                    raise ParseError("Unknown NOTIFY event")
                events.append(name)
                if name == "MessageNew" and r.data[r.pos : r.pos + 2] == b" (":
                    if not kind.startswith("SELECTED"):
                        raise ParseError("Fetch attributes go with the selected mailbox")
                    r.sp()
                    fetch = r.paren_list(lambda: _fetch_att(r))
                    if not fetch:
                        raise ParseError("Empty fetch attribute list")
                if r.take(b")"):
                    break
                r.sp()
        r.expect(b")", "')' after an event group")
        groups.append({"filter": kind, "mailboxes": mailboxes, "events": events, "fetch": fetch})
        if r.at_end():
            return {"action": "SET", "status": status, "groups": groups}
        r.sp()


def _none(r: Reader) -> dict[str, Any]:
    return {}


COMMANDS = {
    "CAPABILITY": _none,
    "NOOP": _none,
    "LOGOUT": _none,
    "STARTTLS": _none,
    "LOGIN": _login_args,
    "AUTHENTICATE": _authenticate_args,
    "SELECT": _select_args,
    "EXAMINE": _select_args,
    "CREATE": _create_args,
    "DELETE": _one_mailbox,
    "RENAME": _rename_args,
    "SUBSCRIBE": _one_mailbox,
    "UNSUBSCRIBE": _one_mailbox,
    "LIST": lambda r: _list_args(r, True),
    "LSUB": lambda r: _list_args(r, False),
    "STATUS": _status_args,
    "APPEND": _append_args,
    "CHECK": _none,
    "CLOSE": _none,
    "UNSELECT": _none,
    "EXPUNGE": _none,
    "SEARCH": _search_args,
    "SORT": _sort_args,
    "CANCELUPDATE": _cancelupdate_args,
    "COMPRESS": _compress_args,
    "GETMETADATA": _getmetadata_args,
    "SETMETADATA": _setmetadata_args,
    "NOTIFY": _notify_args,
    "THREAD": _thread_args,
    "FETCH": _fetch_args,
    "STORE": _store_args,
    "COPY": _copy_args,
    "MOVE": _copy_args,
    "IDLE": _none,
    "NAMESPACE": _none,
    "ENABLE": _enable_args,
    "ID": _id_args,
    "GETQUOTA": _quota_root,
    "GETQUOTAROOT": _one_mailbox,
    "SETQUOTA": _setquota_args,
}
UID_COMMANDS = {"FETCH", "STORE", "COPY", "MOVE", "SEARCH", "EXPUNGE", "SORT", "THREAD"}
TAG_RE = re.compile(rb"[\x21\x23-\x27\x2C-\x5B\x5D-\x7A\x7C\x7E]+")


def parse(data: bytes, spools: dict[int, Any] | None = None) -> Command:
    """One command: `tag SP name [SP args]`, literals included (or spooled to disk),
    final CRLF removed."""
    match = TAG_RE.match(data)
    if not match:
        raise ParseError("Missing or invalid tag")
    tag = match.group().decode("ascii")
    r = Reader(data, spools)
    r.pos = match.end()
    try:
        r.sp()
        name = r.atom().upper()
        uid = False
        if name == "UID":
            r.sp()
            name = r.atom().upper()
            if name not in UID_COMMANDS:
                raise ParseError(f"UID {name} is not a command")
            uid = True
        handler = COMMANDS.get(name)
        if handler is None:
            raise ParseError(f"Unknown command {name}")
        if uid and name == "EXPUNGE":
            r.sp()
            args = {"set": r.sequence_set()}
        else:
            args = handler(r)
        r.end()
    except ParseError as error:
        error.tag = tag
        raise
    except (ValueError, IndexError, RecursionError) as error:  # belt and braces
        raise ParseError(f"Invalid command: {error}", tag) from None
    return Command(tag, name, uid, args)


def literal_at_end(line: bytes) -> tuple[int, bool] | None:
    """(size, non-synchronizing) if a command line ends with a literal announcement."""
    match = LITERAL_RE.search(line)
    if not match:
        return None
    return int(match.group(1)), bool(match.group(2))
