"""SEARCH: every RFC 3501 key, evaluated cheapest first so that flag and number keys
never read a file, header keys read the folder's header cache, and only BODY/TEXT read
whole messages."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Callable
from datetime import date
from email.utils import parsedate_to_datetime
from typing import Any

from courriel.access.imap import addresses
from courriel.access.imap.parser import SAVED, STAR, SequenceSet
from courriel.access.imap.view import Selected
from courriel.mailstore.headers import decoded
from courriel.mailstore.index import FLAG_LETTERS, Message

_HEADER_KEYS = {"FROM": "from", "TO": "to", "CC": "cc", "BCC": "bcc", "SUBJECT": "subject"}
_JOIN = "\0"  # between occurrences of a field: a match never spans two of them


def address_text(values: list[str]) -> str:
    """What SEARCH FROM/TO/CC/BCC look in: every occurrence's addresses written in the
    normal form (comments dropped, groups kept), MIME words decoded, case-folded."""
    return _JOIN.join(decoded(addresses.write(addresses.parse(v))).casefold() for v in values)


def subject_text(values: list[str]) -> str:
    """SEARCH SUBJECT: whitespace runs folded, MIME words decoded, case-folded."""
    return _JOIN.join(decoded(" ".join(v.split())).casefold() for v in values)


def header_text(values: list[str]) -> str:
    """SEARCH HEADER: every occurrence, MIME words decoded, case-folded."""
    return _JOIN.join(decoded(v).casefold() for v in values)


def present(values: list[str]) -> str:
    """SEARCH HEADER name "": whether the field is there at all."""
    return "1" if values else ""


_TRANSFORMS = {
    "from": address_text,
    "to": address_text,
    "cc": address_text,
    "bcc": address_text,
    "subject": subject_text,
}
_COST = {
    "all": 0,
    "seq": 0,
    "uid": 0,
    "modseq": 0,
    "flag": 0,
    "recent": 0,
    "size": 1,
    "within": 2,
    "savedate": 1,
    "date": 2,
    "header": 3,
    "not": 3,
    "or": 3,
    "and": 3,
}


def in_set(number: int, ranges: SequenceSet, largest: int) -> bool:
    for first, last in ranges:
        low = largest if first == STAR else first
        high = largest if last == STAR else last
        if low > high:
            low, high = high, low
        if low <= number <= high:
            return True
    return False


def _cost(node: tuple[Any, ...]) -> int:
    if node[0] == "text":
        return 3 if node[1] in _HEADER_KEYS else 4
    return _COST.get(node[0], 3)


Predicate = Callable[[Message, int], bool]


def _compare_day(key: str, when: date, day: date) -> bool:
    if key == "BEFORE":
        return when < day
    if key == "ON":
        return when == day
    return when >= day


def save_date(message: Message) -> float:
    """When the message was saved into its folder: the time at the start of its Maildir
    name (given at delivery, APPEND, COPY and MOVE; flag changes keep it)."""
    head = message.base.split(".", 1)[0]
    return float(head) if head.isdigit() else 0.0


class Search:
    """A SEARCH over a session's view; the key tree is compiled once into predicates."""

    def __init__(self, selected: Selected) -> None:
        self.index = selected.index
        self.view = selected.view
        self.recent = selected.recent
        self.lookup = selected.lookup
        self.saved = set(selected.saved)
        self._text: dict[int, str] = {}
        self.uses_modseq = False  # the answer then ends with (MODSEQ highest)

    def run(self, keys: tuple[Any, ...]) -> list[tuple[int, int]]:
        """(sequence number, uid) of every matching message of the session's view."""
        if keys == ("and", [("all",)]):  # SORT/THREAD ... ALL: nothing to test
            return [(position, uid) for position, uid in enumerate(self.view, 1)]
        predicate = self.compile(keys)
        lookup = self.lookup
        found = []
        for position, uid in enumerate(self.view, 1):
            message = lookup(uid)
            if message is not None and predicate(message, position):
                found.append((position, uid))
        return found

    def compile(self, node: tuple[Any, ...]) -> Predicate:
        kind = node[0]
        index = self.index
        if kind == "and":
            parts = [self.compile(k) for k in sorted(node[1], key=_cost)]
            if len(parts) == 1:
                return parts[0]
            return lambda m, s: all(p(m, s) for p in parts)
        if kind == "all":
            return lambda m, s: True
        if kind == "flag":
            letter = self._letter(node[1])
            wanted = node[2]
            if letter is None:
                return lambda m, s: not wanted
            return lambda m, s: (letter in m.info) == wanted
        if kind == "recent":
            recent, wanted = self.recent, node[1]
            return lambda m, s: (m.uid in recent) == wanted
        if kind in ("seq", "uid") and node[1] == [(SAVED, SAVED)]:  # "$" (SEARCHRES)
            saved = self.saved
            return lambda m, s: m.uid in saved
        if kind == "seq":
            ranges, view = node[1], self.view
            return lambda m, s: in_set(s, ranges, len(view))
        if kind == "uid":
            ranges, view = node[1], self.view
            return lambda m, s: in_set(m.uid, ranges, view[-1] if view else 0)
        if kind == "within":  # RFC 5032: received within (YOUNGER) or before the last n s
            limit, younger = time.time() - node[2], node[1] == "YOUNGER"
            return lambda m, s: (index.internaldate(m) >= limit) == younger
        if kind == "savedate":  # RFC 8514: the day it was saved into this folder
            key, day = node[1][5:], node[2]
            return lambda m, s: _compare_day(key, date(*time.localtime(save_date(m))[:3]), day)
        if kind == "modseq":  # RFC 7162: changed at or after this mod-sequence
            self.uses_modseq = True
            lowest = node[1]
            return lambda m, s: m.modseq >= lowest
        if kind == "not":
            inner = self.compile(node[1])
            return lambda m, s: not inner(m, s)
        if kind == "or":
            first, second = (self.compile(k) for k in sorted(node[1:], key=_cost))
            return lambda m, s: first(m, s) or second(m, s)
        if kind == "size":
            limit, larger = node[2], node[1] == "LARGER"
            if larger:
                return lambda m, s: index.size(m) > limit
            return lambda m, s: index.size(m) < limit
        if kind == "date":
            key, day = node[1], node[2]
            return lambda m, s: self._date(key, day, m)
        if kind == "text":
            needle = node[2].casefold()
            if node[1] in _HEADER_KEYS:
                field = _HEADER_KEYS[node[1]]
                text, transform = index.header_text, _TRANSFORMS[field]
                return lambda m, s: needle in text(m, field, transform)
            body_only = node[1] == "BODY"
            return lambda m, s: self._text_match(needle, body_only, m)
        if kind == "header":
            name, needle = node[1], node[2].casefold()
            text = index.header_text
            if not needle:
                return lambda m, s: bool(text(m, name, present))
            return lambda m, s: needle in text(m, name, header_text)
        raise ValueError(f"unknown search key {kind}")

    def _letter(self, name: str) -> str | None:
        letter = FLAG_LETTERS.get(name.lower())
        if letter is None and not name.startswith("\\"):
            letter = self.index.keywords.letter(name)
        return letter

    def _date(self, key: str, day: date, message: Message) -> bool:
        if key.startswith("SENT"):
            raw = self.index.header_text(message, "date")
            try:
                when = parsedate_to_datetime(raw).date()
            except (TypeError, ValueError, IndexError):
                return False
            key = key[4:]
        else:
            when = date(*time.localtime(self.index.internaldate(message))[:3])
        return _compare_day(key, when, day)

    def _text_match(self, needle: str, body_only: bool, message: Message) -> bool:
        text = self._text.get(message.uid)
        if text is None:
            text = self._text[message.uid] = self._full_text(message)
        if body_only:
            body = text.split("\r\n\r\n", 1)
            return needle in (body[1] if len(body) > 1 else "")
        return needle in text

    def _full_text(self, message: Message) -> str:
        """The message as text, with base64/quoted-printable parts decoded too."""
        data = self.index.read(message) or b""
        text = data.decode("utf-8", "replace")
        lowered = data.lower()
        if b"base64" in lowered or b"quoted-printable" in lowered:
            parsed = email.message_from_bytes(data, policy=email.policy.compat32)
            decoded_parts = []
            for part in parsed.walk():
                if part.get_content_maintype() == "text":
                    payload = part.get_payload(decode=True)
                    if isinstance(payload, bytes):
                        charset = part.get_content_charset() or "utf-8"
                        try:
                            decoded_parts.append(payload.decode(charset, "replace"))
                        except LookupError:
                            decoded_parts.append(payload.decode("utf-8", "replace"))
            text += "\r\n" + "\r\n".join(decoded_parts)
        return text.casefold()
