"""Chapter 11's second way: "Change Passwords" — pick a user, type the new password
twice."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from courriel.accounts.models import Domain
from courriel.accounts.passwords import MAX_LENGTH, assess
from courriel.accounts.permissions import Actor, get_mailbox
from courriel.accounts.services import mailboxes as mailbox_service
from courriel.errors import CourrielError
from courriel.panel.forms.mailboxes import PasswordTwiceForm
from courriel.panel.roles import actor_for, domain_view
from courriel.panel.views.common import (
    keep_session,
    page_of,
    posted,
    proof_from,
    say_password_changed,
)
from courriel.panel.views.mailboxes import searched

CONTEXT = ("login", "domain", "real_name")  # what a password must not be built from
MAX_FIELD = 254


@domain_view
def pick(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """Select a user to change his or her password."""
    mailboxes, search = searched(request, mailbox_service.mailboxes_of(actor, domain))
    return render(
        request,
        "panel/passwords/pick.html",
        {"domain": domain, "page": page_of(request, mailboxes), "search": search},
    )


@sensitive_post_parameters("password", "password_again", "current_password")
@domain_view
def change(request: HttpRequest, actor: Actor, domain: Domain, login: str) -> HttpResponse:
    """Changing password for monsite0001 (Info)."""
    mailbox = get_mailbox(actor, login, domain)
    own = actor.owns(mailbox)
    form = PasswordTwiceForm(posted(request), mailbox=mailbox, own=own)
    if request.method == "POST" and form.is_valid():
        try:
            changed = mailbox_service.change_password(
                actor,
                mailbox,
                form.cleaned_data["password"],
                proof=proof_from(request, form.cleaned_data.get("current_password")),
            )
            keep_session(request, mailbox)
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(
                request, _("The password of %(login)s is changed.") % {"login": mailbox.login}
            )
            say_password_changed(request, own, changed.tokens_revoked)
            return redirect("passwords", domain=domain.name)
    return render(
        request, "panel/passwords/change.html", {"domain": domain, "mailbox": mailbox, "form": form}
    )


@require_POST
def strength(request: HttpRequest) -> HttpResponse:
    """The strength of a password being typed (panel.js asks as the user types): the
    services' own rule, so what the meter says is what saving will say. For signed-in
    people only: it is not an oracle for anyone passing by."""
    if actor_for(request) is None:
        return JsonResponse({"detail": _("Sign in first.")}, status=403)
    values = {key: request.POST.get(key, "")[:MAX_FIELD] for key in CONTEXT}
    found = assess(
        request.POST.get("password", "")[: MAX_LENGTH + 1],
        login=values["login"],
        domain=values["domain"],
        real_name=values["real_name"],
    )
    if found.problem:
        message = found.problem
    elif found.score >= 4:
        message = _("Strong password.")
    else:
        message = _("Good password.")
    return JsonResponse({"ok": found.ok, "score": found.score, "message": message})
