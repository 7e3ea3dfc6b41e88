"""Text fields checked against their column's length before they reach the database:
PostgreSQL refuses an over-long value with an error the user would never see, SQLite
stores it silently. Either way the user gets a form error that says the limit."""

from __future__ import annotations

from django.db.models import Model

from courriel.errors import ValidationError
from courriel.i18n import gettext as _


def fitting(model: type[Model], field: str, value: str) -> str:
    """`value` stripped, or a ValidationError on `field` when it is too long."""
    value = value.strip()
    column = model._meta.get_field(field)
    limit = getattr(column, "max_length", None)
    if limit is not None and len(value) > limit:
        raise ValidationError(
            _("%(field)s is too long (at most %(count)s characters).")
            % {"field": str(column.verbose_name).capitalize(), "count": limit},
            field=field,
        )
    return value
