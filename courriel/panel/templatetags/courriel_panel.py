"""Template helpers: sizes written the way each language writes them ("30 GB",
"30 Go", "1,5 GB"), and what kind of input a form field is (for accessible markup)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms, template
from django.utils.translation import gettext as _

from courriel.i18n import format_duration, format_size
from courriel.panel.forms.fields import OptionalWidget

register = template.Library()


@register.filter
def size(value: int | None, unlimited: str = "") -> str:
    """Like the manual's "76 kB out of 30 GB", in the page's language; None is unlimited."""
    if value is None:
        return unlimited or _("Unlimited")
    return format_size(int(value), space="\u00a0")


@register.filter
def as_datetime(value: float | str | None) -> datetime | None:
    """A Unix time (the queue's envelopes) or an ISO 8601 text (backups) as a date that
    the `date` and `timesince` filters show in the page's language and time zone."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return datetime.fromtimestamp(value, tz=UTC)


@register.filter
def duration(seconds: float | None) -> str:
    """A configured delay or period in its largest whole unit: "15 minutes", "2 days",
    "90 seconds" (settings are written that way, so nothing is rounded away)."""
    if seconds is None:
        return ""
    return format_duration(seconds, exact=True)


@register.filter
def limit(value: int | None) -> str:
    """A count limit of a plan: a number or "Unlimited"."""
    return _("Unlimited") if value is None else str(value)


@register.filter
def is_checkbox(field: forms.BoundField) -> bool:
    return isinstance(field.field.widget, forms.CheckboxInput)


@register.filter
def is_choice_group(field: forms.BoundField) -> bool:
    widget = field.field.widget
    return isinstance(widget, OptionalWidget | forms.RadioSelect | forms.CheckboxSelectMultiple)


@register.filter
def get(mapping: dict[Any, Any], key: Any) -> Any:
    return mapping.get(key) if mapping else None


@register.filter
def bound(form: forms.Form, name: str) -> forms.BoundField | None:
    """`form|bound:"quota"`: the field by name, or nothing when this form lacks it."""
    return form[name] if name in form.fields else None


@register.filter
def question(field: forms.BoundField) -> str:
    """The question a yes-checkbox answers ("Deliver to this user normally")."""
    return str(getattr(field.field, "question", ""))


@register.filter
def local_part(email: str) -> str:
    return (email or "").split("@", 1)[0]


@register.simple_tag
def out_of(used: int, most: int | None) -> str:
    """1 out of 5 (chapter 3), or "0 (no limit)" when the plan sets none."""
    if most is None:
        return _("%(n)s (no limit)") % {"n": used}
    return _("%(n)s out of %(max)s") % {"n": used, "max": most}


@register.filter
def verification_record(item: Any) -> tuple[str, str]:
    """(record name, value) of the TXT record that proves control of a pending name."""
    from courriel.accounts.services.ownership import verification_record as record

    return record(item)
