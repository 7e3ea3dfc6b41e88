"""How much any interface may send in one value, the same for the panel, the API, the
CLI and batch imports: checked in the services before anything is written, so that a
huge input is refused at once with a message that says the limit (as found: Edit
Mailbox stored 10,000 additional addresses and held the database's write lock for 9 s,
where the API stopped at 100)."""

from __future__ import annotations

from collections.abc import Sized

from courriel.errors import ValidationError
from courriel.i18n import gettext as _

ADDITIONAL_ADDRESSES = 100  # per mailbox
ALIAS_DESTINATIONS = 100  # mailboxes and addresses of one alias
NAME = 255  # real names and descriptions
AUTOREPLY_BYTES = 64 * 1024  # an automatic reply message, in UTF-8
IMPORT_LINES = 10_000  # mailboxes in one batch import


def additional_addresses(values: Sized) -> None:
    if len(values) > ADDITIONAL_ADDRESSES:
        raise ValidationError(
            _("At most %(count)s additional addresses per mailbox.")
            % {"count": ADDITIONAL_ADDRESSES},
            field="addresses",
        )


def alias_destinations(count: int, field: str) -> None:
    if count > ALIAS_DESTINATIONS:
        raise ValidationError(
            _("At most %(count)s destinations per alias: use a list server for more.")
            % {"count": ALIAS_DESTINATIONS},
            field=field,
        )


def name(value: str, field: str) -> str:
    """A real name ("real_name") or a description ("description"), stripped, at most
    NAME characters."""
    value = (value or "").strip()
    if len(value) > NAME:
        label = _("Real name") if field == "real_name" else _("Description")
        raise ValidationError(
            _("%(field)s is too long (at most %(count)s characters).")
            % {"field": label, "count": NAME},
            field=field,
        )
    return value


def autoreply(message: str) -> None:
    if len(message.encode("utf-8", "surrogatepass")) > AUTOREPLY_BYTES:
        raise ValidationError(
            _("The automatic reply is too long (at most 64 KiB)."), field="autoreply_message"
        )
