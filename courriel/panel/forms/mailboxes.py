"""The mailbox pages of chapters 6 to 9 and 11: the manual's sections and fields.

`changes()` hands the services their own field names (`modify_mailbox`,
`create_mailbox`), and only what differs from the mailbox as it is.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from courriel.accounts.models import Mailbox
from courriel.accounts.schemas import MailboxOut
from courriel.accounts.services import caps
from courriel.panel.forms.base import PanelForm, TextOrFileForm
from courriel.panel.forms.fields import (
    NEW_PASSWORD,
    LinesField,
    account_mail_field,
    current_password_field,
    date_field,
    minutes_field,
    password_field,
    size_field,
)

YES_NO = [(True, _("Yes")), (False, _("No"))]


def _yes(label: str, question: str, **kwargs: Any) -> forms.BooleanField:
    """A checkbox answering a question ("Deliver to this user normally? [x] Yes,
    deliver to mailbox"), rendered as a fieldset with the question as its legend."""
    field = forms.BooleanField(label=label, required=False, **kwargs)
    field.question = question  # type: ignore[attr-defined]
    return field


class ForwardingForm(PanelForm):
    """Chapter 8, "Mail forwarding settings"."""

    deliver_normally = _yes(_("Yes, deliver to mailbox"), _("Deliver to this user normally"))
    forward = _yes(_("Yes, forward to addresses"), _("Forward to other addresses"))
    forward_to = LinesField(
        label=_("Addresses to forward to"),
        help_text=_("One address per line, e.g. monsite@gmail.com."),
    )

    def service_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "deliver_normally": data["deliver_normally"],
            "forward_to": data["forward_to"] if data["forward"] else [],
        }

    @staticmethod
    def initial_from(mailbox: MailboxOut) -> dict[str, Any]:
        return {
            "deliver_normally": mailbox.deliver_normally,
            "forward": bool(mailbox.forward_to),
            "forward_to": mailbox.forward_to,
        }


class AutoreplyForm(PanelForm):
    """Chapter 9, "Send automatic reply" and "Automatic reply options"."""

    autoreply_enabled = _yes(_("Yes, respond with message"), _("Send automatic reply"))
    autoreply_message = forms.CharField(
        label=_("Automatic reply message"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("Never sent to mailing lists, bulk mail, bounces or other automatic replies."),
    )
    autoreply_interval = minutes_field(
        _("Minimum time between autoreplies"),
        help_text=_("The same sender gets at most one reply in this time."),
    )
    autoreply_start = date_field(_("Automatic reply start date"))
    autoreply_end = date_field(_("Automatic reply end date"))

    def service_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        minutes = data["autoreply_interval"]
        return {
            "autoreply_enabled": data["autoreply_enabled"],
            "autoreply_message": data["autoreply_message"],
            "autoreply_interval": None if minutes is None else minutes * 60,
            "autoreply_start": data["autoreply_start"],
            "autoreply_end": data["autoreply_end"],
        }

    @staticmethod
    def initial_from(mailbox: MailboxOut) -> dict[str, Any]:
        auto = mailbox.autoreply
        return {
            "autoreply_enabled": auto.enabled,
            "autoreply_message": auto.message,
            "autoreply_interval": (
                None if auto.interval_seconds is None else auto.interval_seconds // 60
            ),
            "autoreply_start": auto.start,
            "autoreply_end": auto.end,
        }


def _after_password(name: str) -> list[str]:
    return [name, "current_password"] if name == "password" else [name]


class MailboxForm(ForwardingForm, AutoreplyForm):
    """Add a user / Edit Mailbox: every section of the manual's page."""

    # Virtual domain user mailbox details
    primary_local_part = forms.CharField(label=_("Email address"), max_length=64)
    login = forms.CharField(
        label=_("Login"),
        max_length=64,
        help_text=_("To read mail (IMAP, POP3) and to sign in to this panel."),
    )
    real_name = forms.CharField(label=_("Real name"), max_length=caps.NAME, required=False)
    password = password_field(_("Leave unchanged"))
    login_disabled = forms.BooleanField(label=_("Login temporarily disabled"), required=False)
    # Quota and home directory settings
    quota = size_field(_("Home directory quota"))
    # Email settings
    primary_enabled = forms.TypedChoiceField(
        label=_("Primary email address enabled?"),
        choices=YES_NO,
        coerce=lambda value: value in (True, "True"),
        widget=forms.RadioSelect,
        initial=True,
    )
    addresses = LinesField(
        label=_("Additional email addresses"),
        help_text=_("One per line: contact or contact@monsite.be."),
    )
    send_account_mail_to = account_mail_field(_("Send updated account email to"))
    greylisting = forms.BooleanField(
        label=_("Greylist mail to this mailbox"),
        required=False,
        initial=True,
        help_text=_(
            "Greylisting delays mail from unknown servers by a few minutes and stops much "
            "spam. Turn it off for a mailbox that must receive mail at once."
        ),
    )

    service_fields = {"addresses": "addresses", "owner_login": "login"}

    sections = [
        (
            _("Virtual domain user mailbox details"),
            ["primary_local_part", "login", "real_name", "password", "login_disabled"],
        ),
        (_("Quota and home directory settings"), ["quota"]),
        (
            _("Email settings"),
            ["primary_enabled", "addresses", "greylisting", "send_account_mail_to"],
        ),
        (_("Mail forwarding settings"), ["deliver_normally", "forward", "forward_to"]),
        (
            _("Automatic reply"),
            [
                "autoreply_enabled",
                "autoreply_message",
                "autoreply_interval",
                "autoreply_start",
                "autoreply_end",
            ],
        ),
    ]

    def __init__(self, *args: Any, own: bool = False, **kwargs: Any) -> None:
        """`own`: the signed-in person's own mailbox, whose new password needs the
        current one."""
        super().__init__(*args, **kwargs)
        if own:
            self.fields["current_password"] = current_password_field()
            self.sections = [
                (title, [n for name in names for n in _after_password(name)])
                for title, names in type(self).sections
            ]

    def service_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        values = {
            key: data[key]
            for key in (
                "primary_local_part",
                "login",
                "real_name",
                "login_disabled",
                "quota",
                "primary_enabled",
                "addresses",
            )
        }
        values.update(ForwardingForm.service_values(self))
        values.update(AutoreplyForm.service_values(self))
        if data["password"]:
            values["password"] = data["password"]
        return values

    @staticmethod
    def initial_from(mailbox: MailboxOut) -> dict[str, Any]:
        return {
            "primary_local_part": mailbox.email.split("@")[0],
            "login": mailbox.login,
            "real_name": mailbox.real_name,
            "login_disabled": mailbox.login_disabled,
            "quota": mailbox.quota,
            "primary_enabled": mailbox.primary_enabled,
            "addresses": mailbox.additional_addresses,
            **ForwardingForm.initial_from(mailbox),
            **AutoreplyForm.initial_from(mailbox),
        }

    @classmethod
    def current_values(cls, mailbox: MailboxOut) -> dict[str, Any]:
        """The mailbox in the services' terms, to compare the form with."""
        initial = cls.initial_from(mailbox)
        auto = mailbox.autoreply
        return {
            **{key: initial[key] for key in initial if key not in {"forward"}},
            "autoreply_interval": auto.interval_seconds,
        }

    def edit_changes(self, mailbox: MailboxOut) -> dict[str, Any]:
        current = self.current_values(mailbox)
        values = self.service_values()
        changes = {k: v for k, v in values.items() if k == "password" or current.get(k) != v}
        if "forward_to" in changes or "deliver_normally" in changes:
            # Checked together by the service: send both.
            changes["forward_to"] = values["forward_to"]
            changes["deliver_normally"] = values["deliver_normally"]
        return changes


class NewMailboxForm(MailboxForm):
    """Add a user to this server: the same page, with a generated password offered."""

    password = password_field(_("Generate a strong password, shown once"))
    send_account_mail_to = account_mail_field(_("Send new account email to"), to_new_mailbox=True)

    sections = [
        (
            _("Virtual domain user mailbox details"),
            ["primary_local_part", "login", "real_name", "password", "login_disabled"],
        ),
        (_("Quota and home directory settings"), ["quota"]),
        (_("Email settings"), ["primary_enabled", "addresses", "send_account_mail_to"]),
        (_("Mail forwarding settings"), ["deliver_normally", "forward", "forward_to"]),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in list(self.fields):
            if name.startswith("autoreply_") or name == "greylisting":
                del self.fields[name]

    def create_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        forwarding = ForwardingForm.service_values(self)
        return {
            "login": data["login"],
            "primary_local_part": data["primary_local_part"] or data["login"],
            "real_name": data["real_name"],
            "password": data["password"],
            "generate_password": not data["password"],
            "quota": data["quota"],
            "addresses": data["addresses"],
            "primary_enabled": data["primary_enabled"],
            "disabled": data["login_disabled"],
            "send_account_mail_to": data["send_account_mail_to"],
            **forwarding,
        }


class PasswordTwiceForm(PanelForm):
    """Chapter 11's "Change passwords" page: the new password, twice."""

    password = forms.CharField(
        label=_("New password"),
        strip=False,
        widget=forms.PasswordInput(attrs=NEW_PASSWORD),
    )
    password_again = forms.CharField(
        label=_("New password (again)"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(
        self, *args: Any, mailbox: Mailbox | None = None, own: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if own:
            self.fields["current_password"] = current_password_field()
        if mailbox is not None:  # what the strength shown while typing is checked against
            self.fields["password"].widget.attrs.update(
                {
                    "data-login": mailbox.login,
                    "data-domain": mailbox.domain.name,
                    "data-real-name": mailbox.real_name,
                }
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") and data.get("password_again") != data.get("password"):
            self.add_error("password_again", _("The two passwords differ."))
        return data


class OwnPasswordForm(PasswordTwiceForm):
    """A mailbox user changing their own password proves they know the current one,
    so that a session left open is not enough to take the mailbox over."""

    current = current_password_field()
    field_order = ["current", "password", "password_again"]
    service_fields = {"current_password": "current"}


class BatchForm(TextOrFileForm):
    """Batch create users: pasted text or an uploaded file."""

    text = forms.CharField(
        label=_("Mailboxes, one per line"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
    )
    empty_message = _("Paste the mailboxes or choose a file.")


class SearchForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)

    def term(self) -> str:
        return self.cleaned_data.get("q", "").strip() if self.is_valid() else ""
