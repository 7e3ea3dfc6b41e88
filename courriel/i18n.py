"""Messages of the services in the language of the person who reads them.

The services' errors are written once for the panel, the API and the command line.
They are marked with `gettext` and translated into the language active when they are
raised: the panel's and the API's request language (Django's LocaleMiddleware). The
command line activates no language (`courriel.cli.common.needs_db`) and so speaks
English, like its help and its own messages; so does code that runs before Django is
set up (`courriel backup run` never loads it).

Use `_("... %(name)s ...") % {"name": value}`, never an f-string inside `_()`: the
catalogue holds the text with its placeholders, and a translation may move them.
"""

from __future__ import annotations

from datetime import date

from django.utils.translation import gettext as django_gettext
from django.utils.translation import ngettext as django_ngettext
from django.utils.translation import pgettext as django_pgettext


def _configured() -> bool:
    from django.conf import settings

    return settings.configured


def gettext(message: str) -> str:
    return django_gettext(message) if _configured() else message


def ngettext(singular: str, plural: str, count: int) -> str:
    if _configured():
        return django_ngettext(singular, plural, count)
    return singular if count == 1 else plural


def pgettext(context: str, message: str) -> str:
    return django_pgettext(context, message) if _configured() else message


def format_duration(seconds: float, *, exact: bool = False) -> str:
    """A duration in words, in the reader's language: "15 minutes", "35 jours".

    `exact`: a configured delay or period, in the largest unit that divides it (settings
    are written that way, so nothing is rounded away: "90 seconds"). Otherwise a
    measured time, rounded down to the largest unit it holds at least twice ("6
    minutes", "3 hours", "35 days")."""
    seconds = int(seconds)
    for factor in (86400, 3600, 60):
        fits = seconds % factor == 0 if exact else seconds >= 2 * factor
        if seconds and fits:
            return _in_unit(seconds // factor, factor)
    return _in_unit(seconds, 1)


def _in_unit(count: int, factor: int) -> str:
    if factor == 86400:
        return ngettext("%(count)d day", "%(count)d days", count) % {"count": count}
    if factor == 3600:
        return ngettext("%(count)d hour", "%(count)d hours", count) % {"count": count}
    if factor == 60:
        return ngettext("%(count)d minute", "%(count)d minutes", count) % {"count": count}
    return ngettext("%(count)d second", "%(count)d seconds", count) % {"count": count}


def format_size(size: int | None, space: str = " ") -> str:
    """A size the way the manual writes it ("76 kB", "30 GB", "1.5 GB"), in the reader's
    language ("1,5 Go"); the same as `courriel.units.format_size` in English."""
    if not _configured():
        from courriel import units

        return units.format_size(size)
    from django.utils.formats import number_format

    if size is None:
        return gettext("Unlimited")
    if size < 1024:
        return ngettext("%(count)s byte", "%(count)s bytes", size) % {"count": size}
    for factor, unit in (
        (1024**4, pgettext("size unit", "TB")),
        (1024**3, pgettext("size unit", "GB")),
        (1024**2, pgettext("size unit", "MB")),
        (1024, pgettext("size unit", "kB")),
    ):
        if size >= factor:
            amount = size / factor
            places = 0 if amount == int(amount) or amount >= 100 else 1
            return f"{number_format(amount, places)}{space}{unit}"
    return str(size)  # pragma: no cover - unreachable


def format_day(day: date) -> str:
    """A date the way the reader's language writes it ("19 septembre 2010"); ISO
    8601 when Django is not set up (the command line speaks English anyway)."""
    if not _configured():
        return day.isoformat()
    from django.utils.formats import date_format

    return date_format(day, "DATE_FORMAT")
