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

from django.utils.translation import gettext as django_gettext


def gettext(message: str) -> str:
    from django.conf import settings

    if not settings.configured:
        return message
    return django_gettext(message)
