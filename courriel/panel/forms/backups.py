"""Restoring mail from a snapshot (chapter 12): a domain, a mailbox, a folder or one
message. The provider names the domain; an owner restores their own domain's
mailboxes from its page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from courriel.panel.forms.base import PanelForm


class RestoreForm(PanelForm):
    domain = forms.CharField(label=_("Virtual server"), max_length=253)
    login = forms.CharField(
        label=_("Mailbox"),
        max_length=64,
        required=False,
        help_text=_("Its login, e.g. monsite0001. Empty: every mailbox of the virtual server."),
    )
    folder = forms.CharField(
        label=_("Folder"),
        max_length=255,
        required=False,
        help_text=_("e.g. INBOX or Sent. Empty: every folder."),
    )
    message = forms.CharField(
        label=_("Message"),
        max_length=998,
        required=False,
        help_text=_("Its Message-ID or its file name. Empty: every message."),
    )
    snapshot = forms.ChoiceField(label=_("Snapshot"), required=False)
    in_place = forms.BooleanField(
        label=_("Put the messages back in the folders they came from"),
        required=False,
        help_text=_(
            "Otherwise they go to a new folder “Restored” with the snapshot's date. Nothing "
            "is ever overwritten, and messages still there are not restored twice."
        ),
    )

    def __init__(
        self, *args: Any, snapshots: list[dict[str, Any]], with_domain: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if not with_domain:
            del self.fields["domain"]
        self.fields["snapshot"].choices = [("", _("The newest"))] + [
            (
                snapshot["id"],
                f"{date_format(datetime.fromisoformat(snapshot['taken_at']), 'DATETIME_FORMAT')} "
                f"({snapshot['name']})",
            )
            for snapshot in snapshots
        ]

    def service_values(self) -> dict[str, Any]:
        """`courriel.backup.services.restore`'s arguments (but the domain)."""
        data = self.cleaned_data
        return {
            "login": data["login"].strip() or None,
            "folder": data["folder"].strip() or None,
            "message": data["message"].strip() or None,
            "snapshot": data["snapshot"] or None,
            "in_place": data["in_place"],
        }
