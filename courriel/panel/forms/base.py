"""What every panel form shares: accessible error and help wiring, and the way a
service's refusal (a CourrielError naming a field) lands next to that field."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from courriel.errors import CourrielError


class PanelForm(forms.Form):
    # Service field names that the form shows under another name.
    service_fields: dict[str, str] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if field.help_text:
                field.widget.attrs.setdefault("aria-describedby", f"id_{name}_notes")

    def full_clean(self) -> None:
        super().full_clean()
        self._mark_invalid()

    def _mark_invalid(self) -> None:
        for name in self.errors:
            field = self.fields.get(name)
            if field is not None:
                field.widget.attrs["aria-invalid"] = "true"
                field.widget.attrs["aria-describedby"] = f"id_{name}_notes"

    def refuse(self, error: CourrielError) -> None:
        """Show a service error on its field when the form has it, else on top."""
        name = self.service_fields.get(error.field or "", error.field)
        self.add_error(name if name in self.fields else None, error.message)
        self._mark_invalid()

    def changes(self, current: dict[str, Any]) -> dict[str, Any]:
        """The cleaned values that differ from `current` (so the audit log shows what
        really changed)."""
        return {
            key: value
            for key, value in self.cleaned_data.items()
            if key in current and current[key] != value
        }


class TextOrFileForm(PanelForm):
    """A list pasted in a text area or uploaded as a file (batch mailboxes, whitelist
    imports): `cleaned_data["text"]` holds it either way, read as UTF-8."""

    MAX_BYTES = 2 * 1024 * 1024

    text = forms.CharField(
        label=_("Paste the text"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
    )
    upload = forms.FileField(label=_("Or upload a file"), required=False)
    empty_message: Any = _("Paste the text or choose a file.")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("upload")
        if upload:
            raw = upload.read(self.MAX_BYTES + 1)
            if len(raw) > self.MAX_BYTES:
                raise forms.ValidationError(_("The file is too large (2 MB at most)."))
            try:
                data["text"] = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise forms.ValidationError(
                    _("The file is not UTF-8 text: save it as CSV (UTF-8) and try again.")
                ) from None
        if not (data.get("text") or "").strip():
            raise forms.ValidationError(self.empty_message)
        return data
