"""Self-service for mailbox users (and owners, for their own mailbox): their password,
forwarding (chapter 8), automatic reply (chapter 9), and their mail client settings."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters

from courriel.accounts.models import Mailbox
from courriel.accounts.permissions import Actor, visible_mailboxes
from courriel.accounts.schemas import MailboxOut
from courriel.accounts.services import mailboxes as mailbox_service
from courriel.autoconfig.settings import client_settings
from courriel.errors import CourrielError
from courriel.panel.forms.base import PanelForm
from courriel.panel.forms.mailboxes import AutoreplyForm, ForwardingForm, OwnPasswordForm
from courriel.panel.roles import signed_in
from courriel.panel.views.common import keep_session, posted, proof_from, say_password_changed


def own_mailbox(actor: Actor) -> Mailbox:
    mailbox = (
        visible_mailboxes(actor)
        .prefetch_related("addresses__domain")
        .filter(pk=actor.mailbox_id)
        .first()
        if actor.mailbox_id
        else None
    )
    if mailbox is None:  # the provider has no mailbox of its own
        raise Http404
    return mailbox


@signed_in
def overview(request: HttpRequest, actor: Actor) -> HttpResponse:
    mailbox = own_mailbox(actor)
    return render(
        request,
        "panel/me/overview.html",
        {
            "mailbox": MailboxOut.of(mailbox, with_usage=True),
            "clients": client_settings(mailbox.domain),
        },
    )


@sensitive_post_parameters("current", "password", "password_again")
@signed_in
def password(request: HttpRequest, actor: Actor) -> HttpResponse:
    mailbox = own_mailbox(actor)
    form = OwnPasswordForm(posted(request), mailbox=mailbox)
    if request.method == "POST" and form.is_valid():
        try:
            changed = mailbox_service.change_password(
                actor,
                mailbox,
                form.cleaned_data["password"],
                proof=proof_from(request, form.cleaned_data["current"]),
            )
        except CourrielError as error:
            form.refuse(error)
        else:
            keep_session(request, mailbox)
            messages.success(request, _("Your password is changed."))
            say_password_changed(request, True, changed.tokens_revoked)
            return redirect("me")
    return render(request, "panel/me/password.html", {"form": form, "mailbox": mailbox})


def _settings_page(
    request: HttpRequest,
    actor: Actor,
    form_class: type[ForwardingForm] | type[AutoreplyForm],
    template: str,
    saved: str,
) -> HttpResponse:
    mailbox = own_mailbox(actor)
    shown = MailboxOut.of(mailbox)
    form: PanelForm = form_class(posted(request), initial=form_class.initial_from(shown))
    if request.method == "POST" and form.is_valid():
        try:
            mailbox_service.modify_mailbox(actor, mailbox, **form.service_values())  # type: ignore[attr-defined]
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(request, saved)
            return redirect("me")
    return render(request, template, {"form": form, "mailbox": shown})


@signed_in
def forwarding(request: HttpRequest, actor: Actor) -> HttpResponse:
    return _settings_page(
        request, actor, ForwardingForm, "panel/me/forwarding.html", _("Forwarding saved.")
    )


@signed_in
def autoreply(request: HttpRequest, actor: Actor) -> HttpResponse:
    return _settings_page(
        request, actor, AutoreplyForm, "panel/me/autoreply.html", _("Automatic reply saved.")
    )
