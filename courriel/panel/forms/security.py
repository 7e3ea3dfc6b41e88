"""Forms of the Security page: the code of an authenticator app, the current password
that confirms a change, and a new app password's name."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from courriel.panel.forms.base import PanelForm
from courriel.panel.forms.fields import current_password_field


class CodeForm(PanelForm):
    code = forms.CharField(
        label=_("Code from the app"),
        max_length=64,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
        ),
    )


class CurrentPasswordForm(PanelForm):
    current_password = current_password_field()


class AppPasswordForm(PanelForm):
    name = forms.CharField(
        label=_("Program or device"),
        max_length=100,
        help_text=_("What it is for, e.g. Thunderbird at home, or my phone."),
    )
    current_password = current_password_field()
