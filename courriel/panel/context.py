"""Values every panel page shows: who is signed in and in which role, the version, the
domain being looked at with its switcher, the languages."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest

import courriel


def panel(request: HttpRequest) -> dict[str, Any]:
    from courriel.accounts.permissions import visible_domains
    from courriel.panel.roles import actor_for, impersonating

    actor = actor_for(request)
    current = getattr(request, "courriel_domain", None)
    switcher: list[Any] = []
    if current is not None and actor is not None:
        top = current.top
        switcher = list(
            visible_domains(actor)
            .select_related(None)
            .filter(Q(pk=top.pk) | Q(parent_id=top.pk))
            .order_by("parent_id", "name")
            .only("name", "parent_id")
        )
    nav_domain = current
    if nav_domain is None and actor is not None and actor.role == "owner":
        nav_domain = visible_domains(actor).filter(parent__isnull=True).first()
    match = getattr(request, "resolver_match", None)
    return {
        "nav_domain": nav_domain,
        "page_name": match.url_name if match else "",
        "courriel_version": courriel.__version__,
        "actor": actor,
        "impersonating": impersonating(request) if actor is not None else None,
        "current_domain": current,
        "switcher_domains": switcher,
        "languages": settings.LANGUAGES,
    }
