"""Who is signed in, as a services `Actor`, and the view decorators that require one.

A provider admin may look at the panel *as* a domain owner (impersonation): the
session then carries the owner's mailbox id, the actor becomes that owner (so the
pages show exactly what the owner sees, with the owner's permissions) and its name
keeps the admin's, so that every change made meanwhile is audited as the admin's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from courriel.accounts.models import Domain, Mailbox
from courriel.accounts.permissions import Actor, get_domain
from courriel.errors import NotFoundError

IMPERSONATION_KEY = "courriel_impersonate"

View = TypeVar("View", bound=Callable[..., HttpResponse])


def real_actor(request: HttpRequest) -> Actor | None:
    """The person who signed in, ignoring impersonation."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    if isinstance(user, Mailbox):
        return Actor.for_mailbox(user, remote=True)
    if user.is_active and (user.is_superuser or user.is_staff):
        return Actor("provider", user.username, user_id=user.pk, remote=True)
    return None


def impersonated_owner(request: HttpRequest) -> Mailbox | None:
    mailbox_id = request.session.get(IMPERSONATION_KEY) if hasattr(request, "session") else None
    if not mailbox_id:
        return None
    return (
        Mailbox.objects.select_related("domain")
        .filter(pk=mailbox_id, owned_domains__isnull=False)
        .distinct()
        .first()
    )


def actor_for(request: HttpRequest) -> Actor | None:
    cached = getattr(request, "_courriel_actor", None)
    if cached is not None:
        return cached
    actor = real_actor(request)
    if actor is not None and actor.is_provider:
        owner = impersonated_owner(request)
        if owner is not None:
            actor = Actor(
                "owner",
                f"{actor.name} as {owner.login}",
                mailbox_id=owner.pk,
                user_id=actor.user_id,
                remote=True,
            )
            request._courriel_impersonating = owner  # type: ignore[attr-defined]
    if actor is not None:
        request._courriel_actor = actor  # type: ignore[attr-defined]
    return actor


def impersonating(request: HttpRequest) -> Mailbox | None:
    actor_for(request)
    return getattr(request, "_courriel_impersonating", None)


def _to_login(request: HttpRequest) -> HttpResponse:
    return redirect("/login/?" + urlencode({"next": request.get_full_path()}))


def signed_in(view: View) -> View:
    """The view receives the actor; anonymous visitors go to the login page."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        actor = actor_for(request)
        if actor is None:
            return _to_login(request)
        return view(request, actor, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def provider_only(view: View) -> View:
    """Provider pages. Anyone else (an impersonating admin too) finds nothing here."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        actor = actor_for(request)
        if actor is None:
            return _to_login(request)
        if not actor.is_provider:
            raise Http404
        return view(request, actor, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def domain_view(view: View) -> View:
    """Pages of one virtual server (`/d/<domain>/...`): the domain is looked up through
    the actor's permissions, so another customer's domain is simply not found."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, domain: str, **kwargs: Any) -> HttpResponse:
        actor = actor_for(request)
        if actor is None:
            return _to_login(request)
        try:
            found: Domain = get_domain(actor, domain)
        except NotFoundError:
            raise Http404 from None
        request.courriel_domain = found  # type: ignore[attr-defined]
        return view(request, actor, found, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
