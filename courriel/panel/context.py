"""Values every panel page shows: who is signed in, in which role, the version."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

import courriel


def panel(request: HttpRequest) -> dict[str, Any]:
    from courriel.panel.roles import actor_for

    actor = actor_for(request)
    return {"courriel_version": courriel.__version__, "actor": actor}
