"""Chapter 10's "Mail forwarding alias details" in basic mode."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from courriel.accounts.schemas import AliasOut
from courriel.accounts.services import caps
from courriel.panel.forms.base import PanelForm
from courriel.panel.forms.fields import LinesField
from courriel.panel.forms.mailboxes import _yes

ALL, ONE = "all", "one"


class AliasForm(PanelForm):
    name_mode = forms.ChoiceField(
        label=_("Name"),
        choices=[(ALL, _("All mailboxes")), (ONE, _("Mailbox"))],
        widget=forms.RadioSelect,
        initial=ONE,
    )
    name = forms.CharField(label=_("Alias name"), max_length=64, required=False)
    deliver = _yes(_("Yes, deliver to mailbox"), _("Deliver locally?"))
    mailboxes = LinesField(
        label=_("Mailboxes to deliver to"),
        help_text=_("Logins of this domain's mailboxes, one per line."),
    )
    bounce = _yes(_("Yes, send bounce reply"), _("Bounce mail?"))
    bounce_message = forms.CharField(label=_("Bounce message"), max_length=300, required=False)
    forward = _yes(_("Yes, forward to addresses"), _("Forward to other address?"))
    forward_to = LinesField(
        label=_("Addresses to forward to"), help_text=_("One address per line.")
    )
    everyone = _yes(_("Send to all mailboxes"), _("Forward to everyone in domain?"))
    description = forms.CharField(label=_("Description"), max_length=caps.NAME, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("name_mode") == ONE and not (data.get("name") or "").strip():
            self.add_error(
                "name", _("Type the alias name, e.g. frederic, or choose All mailboxes.")
            )
        return data

    def service_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": "*" if data["name_mode"] == ALL else data["name"],
            "mailboxes": data["mailboxes"] if data["deliver"] else [],
            "forward_to": data["forward_to"] if data["forward"] else [],
            "everyone": data["everyone"],
            "bounce": data["bounce"],
            "bounce_message": data["bounce_message"] if data["bounce"] else "",
            "description": data["description"],
        }

    @staticmethod
    def initial_from(alias: AliasOut) -> dict[str, Any]:
        return {
            "name_mode": ALL if alias.catch_all else ONE,
            "name": "" if alias.catch_all else alias.name,
            "deliver": bool(alias.mailboxes),
            "mailboxes": alias.mailboxes,
            "bounce": alias.bounce,
            "bounce_message": alias.bounce_message,
            "forward": bool(alias.forward_to),
            "forward_to": alias.forward_to,
            "everyone": alias.everyone,
            "description": alias.description,
        }

    def edit_changes(self, alias: AliasOut) -> dict[str, Any]:
        values = self.service_values()
        current = {**self.initial_from(alias), "name": "*" if alias.catch_all else alias.name}
        changes = {
            key: value
            for key, value in values.items()
            if key not in {"mailboxes", "forward_to"} and current.get(key) != value
        }
        if values["mailboxes"] != alias.mailboxes:
            changes["mailboxes"] = values["mailboxes"]
        if values["forward_to"] != alias.forward_to:
            changes["forward_to"] = values["forward_to"]
        return changes
