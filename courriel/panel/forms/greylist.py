"""Greylisting (chapter 13): the search behind "why was my mail delayed, and when will
it arrive?", whitelist entries and postgrey imports, and the per-domain switch.

The forms only carry text to `courriel.greylist.services`, which checks every value.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from courriel.greylist.schemas import DomainGreylistingOut
from courriel.greylist.whitelist import CLIENT, RECIPIENT, SENDER
from courriel.panel.forms.base import PanelForm, TextOrFileForm

KIND_LABELS = {
    CLIENT: _("Sending server (IP address, network or host name)"),
    SENDER: _("Sender (domain or address)"),
    RECIPIENT: _("Recipient (address, user@ or domain)"),
}


class LookupForm(PanelForm):
    """A GET form: the answer is a page that can be bookmarked or sent to a colleague."""

    sender = forms.CharField(
        label=_("Sender"),
        max_length=320,
        required=False,
        help_text=_("The address the mail came from, e.g. alice@example.org."),
    )
    recipient = forms.CharField(
        label=_("Recipient"),
        max_length=320,
        required=False,
        help_text=_("An address, e.g. info@monsite.be, or a whole domain: monsite.be."),
    )
    client_ip = forms.CharField(
        label=_("Sending server's IP address"),
        max_length=45,
        required=False,
        help_text=_("As the mail log or the sender's bounce shows it, e.g. 192.0.2.7."),
    )

    def asked(self) -> bool:
        return self.is_valid() and any(self.cleaned_data[name] for name in self.fields)

    def service_values(self) -> dict[str, str | None]:
        return {name: (self.cleaned_data[name].strip() or None) for name in self.fields}


class WhitelistForm(PanelForm):
    kind = forms.ChoiceField(label=_("Kind"), choices=list(KIND_LABELS.items()))
    value = forms.CharField(
        label=_("Entry"),
        max_length=300,
        help_text=_(
            "One entry: 192.0.2.7, 192.0.2.0/24, mail.example.org, example.org, "
            "alice@example.org, postmaster@ or /regular expression/."
        ),
    )
    comment = forms.CharField(
        label=_("Comment"),
        max_length=300,
        required=False,
        help_text=_("Why this entry exists, e.g. the customer's ticket number."),
    )


class WhitelistImportForm(TextOrFileForm):
    """postgrey's `whitelist_clients` and `whitelist_recipients` files, unchanged."""

    kind = forms.ChoiceField(
        label=_("File format"),
        choices=[
            (CLIENT, _("Sending servers (postgrey whitelist_clients)")),
            (RECIPIENT, _("Recipients (postgrey whitelist_recipients)")),
        ],
    )
    text = forms.CharField(
        label=_("Entries, one per line"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text=_("Comments (#) and empty lines are skipped."),
    )
    empty_message = _("Paste the file's lines or choose the file.")
    field_order = ["kind", "text", "upload"]

    def source(self) -> str:
        upload = self.cleaned_data.get("upload")
        return upload.name if upload else "pasted"


class DomainGreylistingForm(PanelForm):
    """The owner's switch; the provider also sets the domain's own delay."""

    enabled = forms.BooleanField(label=_("Greylist mail to this domain"), required=False)
    delay = forms.CharField(
        label=_("Delay for this domain"),
        max_length=20,
        required=False,
        help_text=_("e.g. 5m or 300 (seconds). Empty: the server's delay."),
    )

    def __init__(self, *args: Any, provider: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not provider:
            del self.fields["delay"]

    @staticmethod
    def initial_from(current: DomainGreylistingOut) -> dict[str, Any]:
        return {
            "enabled": current.enabled,
            "delay": str(current.delay_seconds) if current.delay_overridden else "",
        }

    def service_changes(self, current: DomainGreylistingOut) -> dict[str, Any]:
        """What differs from the domain as it is (so the audit log shows real changes)."""
        changes: dict[str, Any] = {}
        if self.cleaned_data["enabled"] != current.enabled:
            changes["enabled"] = self.cleaned_data["enabled"]
        if "delay" in self.fields:
            delay = self.cleaned_data["delay"].strip()
            if delay != self.initial_from(current)["delay"]:
                changes["delay"] = delay or None
        return changes
