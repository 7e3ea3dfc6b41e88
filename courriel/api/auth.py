"""Bearer-token authentication, throttled per client address like every other door."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer

from courriel.accounts.permissions import Actor
from courriel.accounts.throttle import throttle
from courriel.api import tokens
from courriel.i18n import gettext as _


class TokenAuth(HttpBearer):
    """`Authorization: Bearer crl_...`: the request acts as the token's holder."""

    def authenticate(self, request: HttpRequest, token: str) -> Actor | None:
        ip = request.META.get("REMOTE_ADDR", "")
        wait = throttle.retry_after("", ip)
        if wait:
            raise HttpError(
                429, _("Too many failed attempts: wait %(seconds)s seconds.") % {"seconds": wait}
            )
        token = token.strip()
        actor = tokens.authenticate(token)
        if actor is None and token.startswith(tokens.PREFIX):
            # Only something shaped like a token can be a guess worth slowing down.
            throttle.failed("", ip)
        return actor
