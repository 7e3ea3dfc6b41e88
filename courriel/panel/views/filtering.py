"""Incoming mail checks in the panel: a mailbox's spam thresholds (the domain's owner
and the provider), and how DMARC failures of mail to a domain are treated (shown to
the owner, changed by the provider). The rules are `courriel.inbound.services`."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from courriel.accounts.models import Domain
from courriel.accounts.permissions import Actor
from courriel.errors import CourrielError
from courriel.inbound import services
from courriel.panel.forms.filtering import DomainFilteringForm, MailboxSpamForm
from courriel.panel.roles import domain_view
from courriel.panel.views.common import posted


@domain_view
def mailbox_spam(request: HttpRequest, actor: Actor, domain: Domain, login: str) -> HttpResponse:
    current = services.mailbox_spam(actor, domain, login)
    form = MailboxSpamForm(posted(request), initial=MailboxSpamForm.initial_from(current))
    if request.method == "POST" and form.is_valid():
        try:
            services.set_mailbox_spam(
                actor,
                domain,
                login,
                junk_score=form.cleaned_data["junk_score"],
                reject_score=form.cleaned_data["reject_score"],
            )
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(
                request, _("Spam filtering thresholds of %(login)s saved.") % {"login": login}
            )
            return redirect("user", domain=domain.name, login=login)
    return render(
        request,
        "panel/filtering/mailbox.html",
        {"domain": domain, "form": form, "current": current},
    )


@domain_view
def domain_filtering(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    current = services.domain_filtering(actor, domain)
    form = DomainFilteringForm(posted(request), initial=DomainFilteringForm.initial_from(current))
    if not actor.is_provider:
        form.fields["dmarc"].disabled = True
    if request.method == "POST" and form.is_valid():
        try:
            services.set_domain_dmarc(actor, domain, form.cleaned_data["dmarc"])
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(
                request, _("Incoming mail checks of %(domain)s saved.") % {"domain": domain}
            )
            return redirect("domain-filtering", domain=domain.name)
    return render(
        request,
        "panel/filtering/domain.html",
        {"domain": domain, "form": form, "current": current, "provider": actor.is_provider},
    )
