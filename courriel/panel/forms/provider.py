"""The provider's pages: hosting servers, plans (chapter 4), the audit log, API tokens."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from courriel.accounts.models import HostingServer, Plan
from courriel.accounts.services.plans import LIMIT_FIELDS
from courriel.audit.models import AuditEntry
from courriel.panel.forms.base import PanelForm
from courriel.panel.forms.fields import count_field, current_password_field, size_field


class ServerForm(PanelForm):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("e.g. maximusconfessor"))
    hostname = forms.CharField(
        label=_("Host name"), max_length=253, help_text=_("e.g. maximusconfessor.all2all.org")
    )
    ip_address = forms.CharField(label=_("IP address"), max_length=45, required=False)
    admin_url = forms.CharField(
        label=_("Administration URL"),
        max_length=300,
        required=False,
        help_text=_("Empty: https://<host name>:10000/"),
    )
    accepts_domains = forms.BooleanField(label=_("Takes new domains"), required=False, initial=True)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["name"]

    @staticmethod
    def initial_from(server: HostingServer) -> dict[str, Any]:
        return {
            "hostname": server.hostname,
            "ip_address": server.ip_address or "",
            "admin_url": server.admin_url,
            "accepts_domains": server.accepts_domains,
        }


class PlanForm(PanelForm):
    name = forms.SlugField(label=_("Name"), max_length=50, help_text=_("e.g. recommended"))
    label = forms.CharField(label=_("Label"), max_length=100, required=False)
    web_quota = size_field(_("Disk space for the web"))
    mail_quota = size_field(_("Disk space for mail"))
    max_mailboxes = count_field(_("Number of mailboxes"))
    max_servers = count_field(_("Virtual servers"))
    max_domain_aliases = count_field(_("Domain aliases"))
    default_mailbox_quota = size_field(_("Default mailbox quota"))

    LIMITS = LIMIT_FIELDS

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["name"]

    @classmethod
    def initial_from(cls, plan: Plan) -> dict[str, Any]:
        return {"label": plan.label, **{key: getattr(plan, key) for key in cls.LIMITS}}

    def limits(self) -> dict[str, int | None]:
        return {key: self.cleaned_data[key] for key in self.LIMITS}


class TokenForm(PanelForm):
    name = forms.CharField(
        label=_("Token name"),
        max_length=100,
        help_text=_("What the token is for, e.g. billing script."),
    )
    current_password = current_password_field()


class AuditFilterForm(forms.Form):
    domain = forms.CharField(label=_("Domain"), max_length=253, required=False)
    actor = forms.CharField(label=_("Who"), max_length=150, required=False)
    action = forms.CharField(label=_("Action"), max_length=60, required=False)

    def apply(self, entries: QuerySet[AuditEntry]) -> QuerySet[AuditEntry]:
        if not self.is_valid():
            return entries
        data = self.cleaned_data
        if data["actor"]:
            entries = entries.filter(actor__icontains=data["actor"].strip())
        if data["action"]:
            entries = entries.filter(action__icontains=data["action"].strip())
        if data["domain"]:
            entries = entries.filter(domain__icontains=data["domain"].strip().lower())
        return entries
