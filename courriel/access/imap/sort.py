"""SORT (RFC 5256, with ESORT's RETURN options from RFC 5267) and the sort keys THREAD
uses: sent dates, base subjects, first addresses — computed the way Dovecot 2.3 does
(`index-sort.c`, `imap-base-subject.c`), so that a webmail lists in the same order from
both servers. Keys are read from the folder's header cache (`FolderIndex.header_text`),
so sorting a folder again reads no file."""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable
from email.utils import mktime_tz, parsedate_tz

from courriel.access.imap import addresses
from courriel.mailstore.headers import decoded, field_values
from courriel.mailstore.index import FolderIndex, Message


def sortable(text: str) -> str:
    """Dovecot's comparison form (decomposed title case), compared code point by code
    point: 'a' and 'A' sort together, and before '_' as in Dovecot."""
    return unicodedata.normalize("NFD", text).upper()


def _first_mailbox(values: list[str]) -> str:
    """The local part of the first address of the first occurrence of the field."""
    if not values:
        return ""
    parsed = addresses.parse(values[0])
    return sortable(parsed[0].mailbox or "") if parsed else ""


_DATE = re.compile(
    r"(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"\s*([+-])(\d{2})(\d{2})\s*(?:\(.*\))?$"
)
_MONTHS = {
    m: n
    for n, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}


def _usual_date_seconds(groups: tuple, months: dict) -> int | None:
    """Seconds since the epoch (UTC) of a date in the usual form, from the groups of
    `_DATE` or `_USUAL_DATE` (text or bytes alike); None for an impossible date."""
    day, month, year, hour, minute, second, sign, zh, zm = groups
    number = months.get(month.lower())
    if number is None:
        return None
    try:
        stamp = calendar.timegm(
            (int(year), number, int(day), int(hour), int(minute), int(second or 0))
        )
    except (ValueError, OverflowError):
        return None
    offset = int(zh) * 3600 + int(zm) * 60
    return stamp - offset if sign in ("+", b"+") else stamp + offset


def _sent_date(values: list[str]) -> str:
    """The Date field as seconds since the epoch in UTC (as text, for the cache), or ""
    when there is none or it cannot be read. The usual form is read with one regular
    expression; anything else goes through the email package's lenient parser."""
    if not values:
        return ""
    match = _DATE.match(values[0].strip())
    if match:
        stamp = _usual_date_seconds(match.groups(), _MONTHS)
        if stamp is not None:
            return str(stamp)
    parsed = parsedate_tz(values[0])
    if parsed is None:
        return ""
    try:
        return str(int(mktime_tz(parsed)))
    except (OverflowError, ValueError):
        return ""


_SENT = "\0sent"  # header cache key


_DATE_LINE = re.compile(rb"^date[ \t]*:", re.I | re.M)
_USUAL_DATE = re.compile(
    rb"[ \t]*(?:[A-Za-z]{3},[ \t]*)?(\d{1,2})[ \t]+([A-Za-z]{3})[ \t]+(\d{4})[ \t]+"
    rb"(\d{1,2}):(\d{2})(?::(\d{2}))?[ \t]*([+-])(\d{2})(\d{2})[ \t]*\r?\n(?![ \t])"
)
_BYTE_MONTHS = {m.encode(): n for m, n in _MONTHS.items()}


def _sent_seconds(header: bytes) -> int:
    """The sent date of a message from its header, -1 when it has none. The first
    Date field in its usual unfolded form is read straight from the bytes (the first
    SORT of a folder does this for every message); anything else goes the long way."""
    line = _DATE_LINE.search(header)
    if line is not None:
        match = _USUAL_DATE.match(header, line.end())
        start = line.start()
        if (
            match is not None
            and header.find(b"\n\n", 0, start) < 0
            and header.find(b"\n\r\n", 0, start) < 0
            and not header.startswith((b"\r\n", b"\n"))
        ):  # the field is in the header, not the body
            stamp = _usual_date_seconds(match.groups(), _BYTE_MONTHS)
            if stamp is not None:
                return stamp
    text = _sent_date(field_values(header, "date"))
    return int(text) if text else -1


def _pack(text: str) -> str:
    return " ".join(text.split())


def base_subject(subject: str) -> tuple[str, bool]:
    """RFC 5256 2.1 base subject (in comparison form), and whether the subject showed
    a reply or a forward (Re:, Fwd:, [fwd: ...], (fwd))."""
    text = _pack(sortable(decoded(subject)))
    reply = False
    while True:
        # (2) trailers: "(FWD)" and spaces
        while True:
            if text.endswith(" "):
                text = text[:-1]
            elif text.endswith("(FWD)"):
                text, reply = text[:-5], True
            else:
                break
        while True:
            found = False
            # (3) leader: blobs then RE/FW/FWD [blob] ":"
            if text.startswith(" "):
                text, found = text[1:], True
            rest = text
            while rest.startswith("["):
                rest = _skip_blob(rest)
                if rest is None:
                    break
            if rest is not None:
                for word in ("RE", "FWD", "FW"):
                    if rest.startswith(word):
                        after = rest[len(word) :]
                        after = after[1:] if after.startswith(" ") else after
                        if after.startswith("["):
                            after = _skip_blob(after)
                        if after is not None and after.startswith(":"):
                            text, found, reply = after[1:], True, True
                        break
            # (4) a blob whose removal leaves something
            if text.startswith("["):
                rest = _skip_blob(text)
                if rest:
                    text, found = rest, True
            if not found:
                break
        # (6) "[FWD: ...]"
        if text.startswith("[FWD:") and text.endswith("]"):
            text, reply = text[5:-1], True
            continue
        return text, reply


def _skip_blob(text: str) -> str | None:
    """After a leading "[...]" and one space; None if it is not a blob."""
    end = 1
    while end < len(text) and text[end] not in "[]":
        end += 1
    if end >= len(text) or text[end] != "]":
        return None
    rest = text[end + 1 :]
    return rest[1:] if rest.startswith(" ") else rest


def _subject_key(values: list[str]) -> str:
    """ "1" or "0" (a reply or forward, for THREAD) then the base subject: one small
    string per message in the folder's cache."""
    if not values:
        return "0"
    base, reply = base_subject(values[0])
    return ("1" if reply else "0") + base


class Keys:
    """Sort keys of the messages of one folder (cached in its index)."""

    def __init__(self, index: FolderIndex) -> None:
        self.index = index

    def date(self, message: Message) -> int:
        """The sent date, or the internal date when the message has none."""
        cache = self.index.header_cache.get(_SENT)
        sent = cache.get(message.uid) if cache is not None else None
        if sent is None:
            sent = self.index.header_summary(message, _SENT, _sent_seconds)
        return sent if sent >= 0 else int(self.index.internaldate(message))  # type: ignore[operator]

    def dates(self, messages: list[Message]) -> list[int]:
        """`date` of many messages, their headers read in one loop."""
        sent = self.index.header_summaries(messages, _SENT, _sent_seconds)
        internaldate = self.index.internaldate
        return [
            value if value >= 0 else int(internaldate(message))
            for value, message in zip(sent, messages, strict=True)
        ]

    def subject(self, message: Message) -> str:
        return self.index.header_text(message, "subject", _subject_key)[1:]

    def is_reply(self, message: Message) -> bool:
        return self.index.header_text(message, "subject", _subject_key)[0] == "1"

    def key(self, name: str) -> Callable[[Message], object]:
        index = self.index
        if name == "ARRIVAL":
            return lambda m: int(index.internaldate(m))
        if name == "DATE":
            return self.date
        if name == "SIZE":
            return index.size
        if name == "SUBJECT":
            return self.subject
        field = name.lower()  # FROM, TO, CC: the first address's mailbox
        return lambda m: index.header_text(m, field, _first_mailbox)


def order(
    index: FolderIndex,
    messages: list[Message],
    criteria: list[tuple[str, bool]],
) -> list[int]:
    """Positions in `messages` in the order of the criteria, ties by position
    (`messages` come in mailbox order; stable sorts from the last criterion to the
    first). Each key is worked out once per message, in one pass, before sorting."""
    keys = Keys(index)
    positions = list(range(len(messages)))
    for name, reverse in reversed(criteria):
        ordered = [messages[p] for p in positions]
        if name == "DATE":
            values: list[object] = keys.dates(ordered)
        else:
            key = keys.key(name)
            values = [key(message) for message in ordered]
        by_value = sorted(range(len(ordered)), key=values.__getitem__, reverse=reverse)
        positions = [positions[p] for p in by_value]
    return positions
