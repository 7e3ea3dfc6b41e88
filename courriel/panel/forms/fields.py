"""Form fields for the manual's recurring shapes: "Unlimited / [3G]", "No minimum /
[10] minutes", "Any time / On date [...]", and one-address-per-line text areas.

They only turn text into values; whether a value is allowed is the services' call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from courriel import units
from courriel.accounts.addresses import parse_address
from courriel.errors import CourrielError

NONE, VALUE = "none", "value"
_SPLIT = re.compile(r"[\s,;]+")


class LinesField(forms.CharField):
    """A text area with one item per line (commas and spaces also separate)."""

    widget = forms.Textarea(attrs={"rows": 3})

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [item for item in _SPLIT.split(text) if item]


class OptionalWidget(forms.MultiWidget):
    """Radio buttons, the last one followed by its input, in one fieldset: "Unlimited /
    Size [3G]", or with choices in between: "Don't send / New mailbox address /
    Address [...]"."""

    template_name = "panel/widgets/optional.html"

    def __init__(
        self,
        none_label: Any,
        value_label: Any,
        input_widget: forms.Widget,
        choices: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.none_label = none_label
        self.value_label = value_label
        self.choices = list(choices)
        super().__init__([forms.HiddenInput(), input_widget])

    def decompress(self, value: Any) -> list[Any]:
        if value in (None, ""):
            return [NONE, ""]
        if any(value == mode for mode, _label in self.choices):
            return [value, ""]
        return [VALUE, value]

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        radios = [(NONE, self.none_label), *self.choices, (VALUE, self.value_label)]
        mode = context["widget"]["subwidgets"][0]["value"]
        context["widget"].update(
            value_label=self.value_label,
            radios=radios,
            mode=mode if any(mode == key for key, _label in radios) else NONE,
        )
        return context


class OptionalField(forms.MultiValueField):
    """None (the first choice: unlimited, no minimum, any time) or a converted value.

    Text left in the input while the first choice is picked is ignored, as people
    expect from the old panel. `choices` are more fixed answers between the two; the
    field's value is then their key ("mailbox")."""

    def __init__(
        self,
        *,
        none_label: Any,
        value_label: Any,
        convert: Callable[[str], Any],
        input_widget: forms.Widget | None = None,
        display: Callable[[Any], str] = str,
        choices: Sequence[tuple[str, Any]] = (),
        **kwargs: Any,
    ) -> None:
        self.convert = convert
        self.display = display
        fields = (forms.CharField(required=False), forms.CharField(required=False))
        super().__init__(
            fields,
            require_all_fields=False,
            required=False,
            # The labels stay lazy: translated when a page is drawn, in its language.
            widget=OptionalWidget(
                none_label, value_label, input_widget or forms.TextInput(), choices
            ),
            **kwargs,
        )

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return value
        return None if value is None else self.display(value)

    def compress(self, data_list: list[Any]) -> Any:
        mode, text = [*data_list, NONE, ""][:2]
        if any(mode == key for key, _label in self.widget.choices):
            return mode
        if mode != VALUE:
            return None
        text = (text or "").strip()
        if not text:
            raise forms.ValidationError(
                _("Enter a value, or choose “%s”.") % self.widget.none_label
            )
        try:
            return self.convert(text)
        except CourrielError as error:
            raise forms.ValidationError(error.message) from None
        except ValueError:
            raise forms.ValidationError(_("Enter a whole number.")) from None


def exact_size(size: int) -> str:
    """A size written so that it reads back to the same number of bytes ("3G", "1536M")."""
    for unit, factor in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def _size(text: str) -> int:
    value = units.parse_size(text, allow_unlimited=False)
    assert value is not None
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _date(text: str) -> date:
    value = units.parse_date(text)
    if value is None:
        raise ValueError(text)
    return value


def size_field(label: str, none_label: str | None = None, **kwargs: Any) -> OptionalField:
    return OptionalField(
        label=label,
        none_label=none_label or _("Unlimited"),
        value_label=_("Size"),
        convert=_size,
        display=exact_size,
        input_widget=forms.TextInput(attrs={"size": 8, "placeholder": "3G"}),
        help_text=kwargs.pop("help_text", _("For example 3G, 500M or 1024M.")),
        **kwargs,
    )


def number_field(label: Any, none_label: Any, value_label: Any, **kwargs: Any) -> OptionalField:
    """A count or nothing: Unlimited / At most [15], No minimum / Minutes [10]."""
    return OptionalField(
        label=label,
        none_label=none_label,
        value_label=value_label,
        convert=_count,
        input_widget=forms.NumberInput(attrs={"min": 0, "class": "short"}),
        **kwargs,
    )


def count_field(label: Any, **kwargs: Any) -> OptionalField:
    return number_field(label, _("Unlimited"), _("At most"), **kwargs)


def minutes_field(label: Any, **kwargs: Any) -> OptionalField:
    return number_field(label, _("No minimum"), _("Minutes"), **kwargs)


# A new password's input: panel.js shows the server's verdict on it while typing.
NEW_PASSWORD = {"autocomplete": "new-password", "data-strength": ""}


def current_password_field() -> forms.CharField:
    """The current password, typed again to confirm a change of one's own credentials
    (the services refuse the change without it)."""
    return forms.CharField(
        label=_("Your current password"),
        strip=False,
        required=False,
        max_length=256,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def password_field(none_label: Any, label: Any = None) -> OptionalField:
    """Leave unchanged (or Generate one) / Set to [....]; the typed
    password is never sent back to the browser."""
    return OptionalField(
        label=label or _("Password"),
        none_label=none_label,
        value_label=_("Set to"),
        convert=str,
        input_widget=forms.PasswordInput(attrs=NEW_PASSWORD),
    )


def _address(text: str) -> str:
    return str(parse_address(text))


def account_mail_field(label: Any, *, to_new_mailbox: bool = False) -> OptionalField:
    """Chapter 6's "Send new account email to: Don't send / New mailbox address /
    Address [...]" (the edit page: "Send updated account email to", without the middle
    choice). The value is None, "mailbox" or the address, as the services take it."""
    return OptionalField(
        label=label,
        none_label=_("Don't send"),
        value_label=_("Address"),
        choices=[("mailbox", _("New mailbox address"))] if to_new_mailbox else [],
        convert=_address,
        input_widget=forms.TextInput(
            attrs={"inputmode": "email", "autocomplete": "off", "placeholder": "monsite@gmail.com"}
        ),
    )


def date_field(label: str, **kwargs: Any) -> OptionalField:
    return OptionalField(
        label=label,
        none_label=_("Any time"),
        value_label=_("On date"),
        convert=_date,
        display=lambda value: value.isoformat(),
        input_widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        **kwargs,
    )
