"""Chapter 11's second way: "Change Passwords" — pick a user, type the new password
twice."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters

from courriel.accounts.models import Domain
from courriel.accounts.permissions import Actor, get_mailbox
from courriel.accounts.services import mailboxes as mailbox_service
from courriel.errors import CourrielError
from courriel.panel.forms.mailboxes import PasswordTwiceForm
from courriel.panel.roles import domain_view
from courriel.panel.views.common import keep_session, page_of, posted
from courriel.panel.views.mailboxes import searched


@domain_view
def pick(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """Select a user to change his or her password."""
    mailboxes, search = searched(request, mailbox_service.mailboxes_of(actor, domain))
    return render(
        request,
        "panel/passwords/pick.html",
        {"domain": domain, "page": page_of(request, mailboxes), "search": search},
    )


@sensitive_post_parameters("password", "password_again")
@domain_view
def change(request: HttpRequest, actor: Actor, domain: Domain, login: str) -> HttpResponse:
    """Changing password for monsite0001 (Info)."""
    mailbox = get_mailbox(actor, login, domain)
    form = PasswordTwiceForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            mailbox_service.set_password(actor, mailbox, form.cleaned_data["password"])
            keep_session(request, mailbox)
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(
                request, _("The password of %(login)s is changed.") % {"login": mailbox.login}
            )
            return redirect("passwords", domain=domain.name)
    return render(
        request, "panel/passwords/change.html", {"domain": domain, "mailbox": mailbox, "form": form}
    )
