"""API tokens of the signed-in person (the provider sees and may revoke everyone's)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from courriel.accounts.permissions import Actor
from courriel.api import tokens as token_service
from courriel.errors import CourrielError
from courriel.panel.forms.provider import TokenForm
from courriel.panel.roles import impersonating, real_actor
from courriel.panel.views.common import (
    confirm_page,
    confirmed,
    page_of,
    posted,
    proof_from,
    show_once,
)


def _person(request: HttpRequest) -> Actor:
    """Tokens belong to the person signed in; an admin looking as an owner does not
    make tokens in the owner's name."""
    actor = real_actor(request)
    if actor is None or impersonating(request) is not None:
        raise Http404
    return actor


@sensitive_post_parameters("current_password")
def token_list(request: HttpRequest) -> HttpResponse:
    if real_actor(request) is None:
        return redirect(reverse("login") + "?next=" + request.path)
    actor = _person(request)
    form = TokenForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            created = token_service.create_token(
                actor,
                form.cleaned_data["name"],
                proof=proof_from(request, form.cleaned_data["current_password"]),
            )
        except CourrielError as error:
            form.refuse(error)
        else:
            return show_once(
                request,
                "panel/tokens/created.html",
                {"token": created.token, "secret": created.secret},
            )
    tokens = token_service.tokens_of(actor, everyone=actor.is_provider)
    return render(
        request,
        "panel/tokens/list.html",
        {"form": form, "page": page_of(request, tokens), "everyone": actor.is_provider},
    )


@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    actor = _person(request)
    token = token_service.tokens_of(actor, everyone=actor.is_provider).filter(pk=token_id).first()
    if token is None:
        raise Http404
    if not confirmed(request):
        return confirm_page(
            request,
            title=_("Revoke API token"),
            message=_("Programs using this token lose access at once:"),
            items=[f"{token.prefix}… {token.name} ({token.holder})"],
            button=_("Revoke token"),
            cancel=reverse("tokens"),
        )
    token_service.revoke_token(actor, token.pk)
    messages.success(request, _("Token %(name)s revoked.") % {"name": token.name})
    return redirect("tokens")
