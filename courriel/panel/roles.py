"""The signed-in person as a services Actor."""

from __future__ import annotations

from django.http import HttpRequest

from courriel.accounts.models import Mailbox
from courriel.accounts.permissions import Actor


def actor_for(request: HttpRequest) -> Actor | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    cached = getattr(request, "_courriel_actor", None)
    if cached is not None:
        return cached
    if isinstance(user, Mailbox):
        actor = Actor.for_mailbox(user)
    elif user.is_superuser or user.is_staff:
        actor = Actor("provider", user.username, user_id=user.pk)
    else:
        return None
    request._courriel_actor = actor  # type: ignore[attr-defined]
    return actor
