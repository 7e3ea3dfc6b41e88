"""Virtual servers: details (chapter 5), sub-servers, domain aliases, and the
provider's "create a customer's mail domain" (chapter 1)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from courriel.accounts.models import Domain, HostingServer, Plan
from courriel.accounts.services import caps
from courriel.accounts.services.domains import DEFAULT_FEATURES, FEATURES
from courriel.panel.forms.base import PanelForm
from courriel.panel.forms.fields import password_field

FEATURE_LABELS = {
    "mail": _("Mail for domain"),
    "dns": _("DNS domain"),
    "web": _("Website"),
    "spam": _("Spam filtering"),
    "ssl": _("SSL website"),
    "logrotate": _("Log file rotation"),
}


def feature_choices() -> list[tuple[str, Any]]:
    return [(name, FEATURE_LABELS.get(name, name)) for name in FEATURES]


class DomainFactsForm(PanelForm):
    """The facts of chapter 5 that describe a virtual server."""

    description = forms.CharField(label=_("Description"), max_length=caps.NAME, required=False)
    contact_email = forms.CharField(label=_("Contact email"), max_length=254, required=False)
    features = forms.MultipleChoiceField(
        label=_("Enabled features"),
        choices=feature_choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=DEFAULT_FEATURES,
    )


class DomainDetailsForm(DomainFactsForm):
    """What the owner may change on "Virtual Server Details"; the provider also sees
    the plan, hosting server and IP address (the service enforces who may change what)."""

    plan = forms.ModelChoiceField(
        label=_("Account plan"), queryset=Plan.objects.all(), to_field_name="name"
    )
    server = forms.ModelChoiceField(
        label=_("Hosting server"), queryset=HostingServer.objects.all(), to_field_name="name"
    )
    ip_address = forms.CharField(label=_("IP address"), max_length=45, required=False)
    require_2fa = forms.BooleanField(
        label=_("Owners must use two-factor sign-in"),
        required=False,
        help_text=_("The owner is asked to turn it on at the next sign-in."),
    )

    PROVIDER_ONLY = ("plan", "server", "ip_address", "require_2fa")

    def __init__(self, *args: Any, domain: Domain, provider: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not provider or domain.is_subserver:
            del self.fields["plan"]
        if not provider:
            del self.fields["server"]
            del self.fields["ip_address"]
        if not provider or domain.is_subserver:
            del self.fields["require_2fa"]

    @staticmethod
    def initial_from(domain: Domain) -> dict[str, Any]:
        return {
            "description": domain.description,
            "contact_email": domain.contact_email,
            "features": list(domain.features),
            "plan": domain.plan,
            "server": domain.server,
            "ip_address": domain.ip_address or "",
            "require_2fa": domain.require_2fa,
        }

    def service_changes(self, domain: Domain) -> dict[str, Any]:
        current = self.initial_from(domain)
        changes: dict[str, Any] = {}
        for key, value in self.cleaned_data.items():
            if current.get(key) == value:
                continue
            changes[key] = value.name if isinstance(value, Plan | HostingServer) else value
        return changes


class SubServerForm(PanelForm):
    """Create Virtual Server for an owner: another domain within the plan."""

    name = forms.CharField(label=_("Domain name"), max_length=253)
    description = forms.CharField(label=_("Description"), max_length=caps.NAME, required=False)
    contact_email = forms.CharField(label=_("Contact email"), max_length=254, required=False)


class DomainAliasForm(PanelForm):
    name = forms.CharField(
        label=_("Alias domain name"),
        max_length=253,
        help_text=_("Mail to this domain reaches the same addresses, e.g. monsite.eu."),
    )


class CustomerDomainForm(DomainFactsForm):
    """The provider sets up a customer's mail domain on a plan and a hosting server."""

    name = forms.CharField(label=_("Domain name"), max_length=253)
    plan = forms.ModelChoiceField(
        label=_("Account plan"), queryset=Plan.objects.all(), to_field_name="name"
    )
    server = forms.ModelChoiceField(
        label=_("Hosting server"),
        queryset=HostingServer.objects.filter(accepts_domains=True),
        to_field_name="name",
    )
    owner_login = forms.CharField(
        label=_("Administration login"),
        max_length=64,
        required=False,
        help_text=_("Empty: the domain's first label, e.g. monsite for monsite.be."),
    )
    password = password_field(
        _("Generate a strong password, shown once"), label=_("Administration password")
    )
    real_name = forms.CharField(label=_("Owner's real name"), max_length=caps.NAME, required=False)
    field_order = ["name", "plan", "server", "owner_login", "password", "real_name"]

    def service_values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        return {
            "plan": data["plan"],
            "server": data["server"],
            "owner_login": data["owner_login"] or None,
            "password": data["password"] or None,
            "real_name": data["real_name"],
            "description": data["description"],
            "contact_email": data["contact_email"],
            "features": data["features"],
        }
