"""Sizes and durations as people write them ("3G", "1024 MB", "10m", "unlimited").

Sizes are binary like Virtualmin's ("1024 MB" = 1 GB = 2**30 bytes), so quotas read
the same as in the manual. `None` means unlimited everywhere in Courriel.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from courriel.errors import ValidationError
from courriel.i18n import gettext as _

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*([a-zA-Z]*)\s*$")
UNLIMITED_WORDS = {"unlimited", "none", "illimité", "illimite", "onbeperkt", "-"}


def parse_size(text: str | int | None, *, allow_unlimited: bool = True) -> int | None:
    """Parse "3G", "50 MB", "1024M", "123" or "unlimited" into bytes (None = unlimited)."""
    if text is None:
        if allow_unlimited:
            return None
        raise ValidationError(_("A size is required, e.g. 3G or 500M."))
    if isinstance(text, int):
        if text < 0:
            raise ValidationError(_("Size %(size)s is negative.") % {"size": text})
        return text
    if text.strip().lower() in UNLIMITED_WORDS:
        if allow_unlimited:
            return None
        raise ValidationError(_("This size cannot be unlimited."))
    match = _SIZE_RE.match(text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        if allow_unlimited:
            message = _(
                "Invalid size %(text)s: write a number with an optional unit, e.g. 3G, 500M, "
                "1024MB or 'unlimited'."
            )
        else:
            message = _(
                "Invalid size %(text)s: write a number with an optional unit, e.g. 3G, 500M, "
                "1024MB."
            )
        raise ValidationError(message % {"text": repr(text)})
    number = float(match.group(1).replace(",", "."))
    return int(number * _SIZE_UNITS[match.group(2).lower()])


def format_size(size: int | None, unlimited: str = "Unlimited") -> str:
    """Human size the way the manual shows them: "76 kB", "1024 MB", "30 GB"."""
    if size is None:
        return unlimited
    if size < 1024:
        return f"{size} bytes"
    for unit, factor in (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if size >= factor:
            value = size / factor
            if value == int(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{size} bytes"  # pragma: no cover - unreachable


def size_for_json(size: int | None) -> int | None:
    return size


_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_DURATION_UNITS = {"": 60, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int, *, default_unit: str = "m") -> timedelta:
    """Parse "10m", "2h", "30s", "5d", "1w"; a bare number is in `default_unit`."""
    if isinstance(text, int):
        return timedelta(seconds=text * _DURATION_UNITS[default_unit])
    match = _DURATION_RE.match(text)
    if not match:
        raise ValidationError(
            _("Invalid duration %(text)s: write a number and a unit, e.g. 30s, 10m, 2h or 5d.")
            % {"text": repr(text)}
        )
    unit = (match.group(2) or default_unit).lower()
    return timedelta(seconds=int(match.group(1)) * _DURATION_UNITS[unit])


def format_duration(delta: timedelta | None, none: str = "No minimum") -> str:
    if delta is None:
        return none
    seconds = int(delta.total_seconds())
    for unit, factor in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % factor == 0:
            return f"{seconds // factor}{unit}"
    return f"{seconds}s"


_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d/%b/%Y")


def parse_date(text: str | None) -> date | None:
    """Parse 2010-09-19, 19/09/2010, 19.09.2010 or 19/Sep/2010; empty or 'any' is None."""
    if text is None or text.strip().lower() in {"", "any", "none", "-"}:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    raise ValidationError(
        _("Invalid date %(text)s: write it as YYYY-MM-DD (e.g. 2010-09-19) or DD/MM/YYYY.")
        % {"text": repr(text)}
    )
