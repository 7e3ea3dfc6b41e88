"""The Security page, for every role: two-factor sign-in (enrolment with a QR code,
recovery codes, turning it off) and, for mailboxes, the app passwords that mail
programs use. The rules are `courriel.accounts.services.twofactor`'s."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from courriel.accounts.models import Mailbox
from courriel.accounts.permissions import Actor
from courriel.accounts.services import twofactor
from courriel.accounts.signin import Proof
from courriel.errors import CourrielError
from courriel.panel.forms.security import AppPasswordForm, CodeForm, CurrentPasswordForm
from courriel.panel.roles import impersonating, real_actor
from courriel.panel.views.auth import MUST_ENROL
from courriel.panel.views.common import (
    confirm_page,
    confirmed,
    posted,
    proof_from,
    report,
    show_once,
)

T = TypeVar("T")


def _person(request: HttpRequest) -> tuple[Actor, Mailbox | User]:
    """The signed-in person and what they sign in as; an admin looking as an owner has
    no business with the owner's security."""
    actor = real_actor(request)
    if actor is None or impersonating(request) is not None:
        raise Http404
    if actor.mailbox_id is not None:
        return actor, Mailbox.objects.select_related("domain").get(pk=actor.mailbox_id)
    return actor, User.objects.get(pk=actor.user_id)


def _page(
    request: HttpRequest,
    *,
    off_form: CurrentPasswordForm | None = None,
    codes_form: CurrentPasswordForm | None = None,
    app_form: AppPasswordForm | None = None,
) -> HttpResponse:
    actor, holder = _person(request)
    is_mailbox = isinstance(holder, Mailbox)
    return render(
        request,
        "panel/security/overview.html",
        {
            "enabled": twofactor.enabled(holder) is not None,
            "required": twofactor.required(holder),
            "codes_left": twofactor.recovery_codes_left(holder),
            "off_form": off_form or CurrentPasswordForm(prefix="off"),
            "codes_form": codes_form or CurrentPasswordForm(prefix="codes"),
            "app_form": app_form or AppPasswordForm(),
            "app_passwords": twofactor.app_passwords_of(actor, holder) if is_mailbox else None,
        },
    )


def overview(request: HttpRequest) -> HttpResponse:
    if real_actor(request) is None:
        return redirect(reverse("login") + "?next=" + request.path)
    return _page(request)


@require_POST
def enrol(request: HttpRequest) -> HttpResponse:
    """*Turn on*: a new key, its QR code, and the form for the first code."""
    actor, holder = _person(request)
    try:
        enrolment = twofactor.begin(actor, holder)
    except CourrielError as error:
        messages.error(request, error.message)
        return redirect("security")
    return show_once(
        request, "panel/security/enrol.html", {"enrolment": enrolment, "form": CodeForm()}
    )


@require_POST
def confirm(request: HttpRequest) -> HttpResponse:
    """The first code: two-factor sign-in is on, and the recovery codes are shown once."""
    actor, holder = _person(request)
    form = CodeForm(request.POST)
    if form.is_valid():
        try:
            codes = twofactor.confirm(actor, holder, form.cleaned_data["code"])
        except CourrielError as error:
            form.refuse(error)
        else:
            request.session.pop(MUST_ENROL, None)
            messages.success(request, _("Two-factor sign-in is on."))
            return show_once(request, "panel/security/codes.html", {"codes": codes})
    enrolment = twofactor.pending_enrolment(actor, holder)
    if enrolment is None:
        return redirect("security")
    return show_once(request, "panel/security/enrol.html", {"enrolment": enrolment, "form": form})


def _confirmed_by_password(
    request: HttpRequest,
    prefix: str,
    action: Callable[[Actor, Mailbox | User, Proof | None], T],
    done: Callable[[T], HttpResponse],
) -> HttpResponse:
    """A change confirmed with the current password (the form's fields are prefixed, two
    such forms share the page): done, or the page again with the refusal."""
    actor, holder = _person(request)
    form = CurrentPasswordForm(request.POST, prefix=prefix)
    if form.is_valid():
        try:
            result = action(
                actor, holder, proof_from(request, form.cleaned_data["current_password"])
            )
        except CourrielError as error:
            form.refuse(error)
        else:
            return done(result)
    return _page(request, **{f"{prefix}_form": form})  # type: ignore[arg-type]


@sensitive_post_parameters("off-current_password")
@require_POST
def turn_off(request: HttpRequest) -> HttpResponse:
    def done(_nothing: None) -> HttpResponse:
        messages.success(request, _("Two-factor sign-in is off."))
        return redirect("security")

    return _confirmed_by_password(request, "off", twofactor.disable, done)


@sensitive_post_parameters("codes-current_password")
@require_POST
def recovery_codes(request: HttpRequest) -> HttpResponse:
    return _confirmed_by_password(
        request,
        "codes",
        twofactor.new_recovery_codes,
        lambda codes: show_once(request, "panel/security/codes.html", {"codes": codes}),
    )


@sensitive_post_parameters("current_password")
@require_POST
def app_password_new(request: HttpRequest) -> HttpResponse:
    actor, holder = _person(request)
    if not isinstance(holder, Mailbox):
        raise Http404
    form = AppPasswordForm(posted(request))
    if form.is_valid():
        try:
            created = twofactor.create_app_password(
                actor,
                holder,
                form.cleaned_data["name"],
                proof_from(request, form.cleaned_data["current_password"]),
            )
        except CourrielError as error:
            form.refuse(error)
        else:
            return show_once(
                request,
                "panel/security/app_password.html",
                {"app_password": created.app_password, "secret": created.secret},
            )
    return _page(request, app_form=form)


@require_POST
def app_password_revoke(request: HttpRequest, app_password_id: int) -> HttpResponse:
    actor, holder = _person(request)
    if not isinstance(holder, Mailbox):
        raise Http404
    found = holder.app_passwords.filter(pk=app_password_id).first()
    if found is None:
        raise Http404
    if not confirmed(request):
        return confirm_page(
            request,
            title=_("Revoke app password"),
            message=_("The mail program using this app password can no longer sign in:"),
            items=[found.name],
            button=_("Revoke app password"),
            cancel=reverse("security"),
        )
    report(
        request,
        lambda: twofactor.revoke_app_password(actor, holder, found.pk),
        lambda gone: _("App password %(name)s revoked.") % {"name": gone.name},
    )
    return redirect("security")
