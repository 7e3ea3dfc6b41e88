"""SEARCH: every RFC 3501 key, evaluated cheapest first so that flag and number keys
never read a file, header keys read the folder's header cache, and only BODY/TEXT read
whole messages."""

from __future__ import annotations

import email
import email.policy
import time
from datetime import date
from email.utils import parsedate_to_datetime
from typing import Any

from courriel.access.imap.parser import STAR, SequenceSet
from courriel.mailstore.headers import decoded, header_fields
from courriel.mailstore.index import FLAG_LETTERS, FolderIndex, Message

_HEADER_KEYS = {"FROM": "from", "TO": "to", "CC": "cc", "BCC": "bcc", "SUBJECT": "subject"}
_COST = {"all": 0, "seq": 0, "uid": 0, "flag": 0, "recent": 0, "size": 1, "date": 2,
         "header": 3, "not": 3, "or": 3, "and": 3}


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


class Search:
    def __init__(self, index: FolderIndex, view: list[int], recent: set[int]) -> None:
        self.index = index
        self.view = view
        self.recent = recent
        self._fields: dict[int, dict[str, str]] = {}
        self._text: dict[int, str] = {}

    def run(self, keys: tuple[Any, ...]) -> list[tuple[int, int]]:
        """(sequence number, uid) of every matching message of the session's view."""
        found = []
        by_uid = self.index.by_uid
        for position, uid in enumerate(self.view, 1):
            message = by_uid.get(uid)
            if message is not None and self.match(keys, message, position):
                found.append((position, uid))
        return found

    def match(self, node: tuple[Any, ...], message: Message, seq: int) -> bool:
        kind = node[0]
        if kind == "and":
            return all(self.match(k, message, seq) for k in sorted(node[1], key=_cost))
        if kind == "all":
            return True
        if kind == "flag":
            return self._has_flag(message, node[1]) == node[2]
        if kind == "recent":
            return (message.uid in self.recent) == node[1]
        if kind == "seq":
            return in_set(seq, node[1], len(self.view))
        if kind == "uid":
            return in_set(message.uid, node[1], self.view[-1] if self.view else 0)
        if kind == "not":
            return not self.match(node[1], message, seq)
        if kind == "or":
            first, second = sorted(node[1:], key=_cost)
            return self.match(first, message, seq) or self.match(second, message, seq)
        if kind == "size":
            size = self.index.size(message)
            return size > node[2] if node[1] == "LARGER" else size < node[2]
        if kind == "date":
            return self._date(node[1], node[2], message)
        if kind == "text":
            return self._text_match(node[1], node[2], message)
        if kind == "header":
            value = self._header(message, node[1])
            return value is not None and node[2].casefold() in decoded(value).casefold()
        return False

    def _has_flag(self, message: Message, name: str) -> bool:
        letter = FLAG_LETTERS.get(name.lower())
        if letter is None:
            if name.startswith("\\"):
                return False
            letter = self.index.keywords.letter(name)
            if letter is None:
                return False
        return letter in message.info

    def _date(self, key: str, day: date, message: Message) -> bool:
        if key.startswith("SENT"):
            raw = self.index.header_value(message, "date")
            try:
                when = parsedate_to_datetime(raw).date()
            except (TypeError, ValueError, IndexError):
                return False
            key = key[4:]
        else:
            when = date(*time.localtime(self.index.internaldate(message))[:3])
        if key == "BEFORE":
            return when < day
        if key == "ON":
            return when == day
        return when >= day

    def _header(self, message: Message, name: str) -> str | None:
        if name in self.index.header_cache:
            value = self.index.header_value(message, name)
            if value:
                return value
        fields = self._fields.get(message.uid)
        if fields is None:
            data = self.index.read(message) or b""
            fields = self._fields[message.uid] = header_fields(data)
        return fields.get(name)

    def _text_match(self, key: str, needle: str, message: Message) -> bool:
        needle = needle.casefold()
        if key in _HEADER_KEYS:
            value = self.index.header_value(message, _HEADER_KEYS[key])
            return needle in decoded(value).casefold()
        text = self._text.get(message.uid)
        if text is None:
            text = self._text[message.uid] = self._full_text(message)
        if key == "BODY":
            body = text.split("\r\n\r\n", 1)
            return needle in (body[1] if len(body) > 1 else "")
        return needle in text

    def _full_text(self, message: Message) -> str:
        """The message as text, with base64/quoted-printable parts decoded too."""
        data = self.index.read(message) or b""
        text = data.decode("utf-8", "replace")
        if b"base64" in data.lower() or b"quoted-printable" in data.lower():
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
