"""Bearer-token authentication. A valid token is never refused because of failed
passwords: tokens are 256-bit random secrets, which nobody can guess, so wrong ones are
simply refused (401) and not counted against anyone's address."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from courriel.accounts.permissions import Actor
from courriel.api import tokens


class TokenAuth(HttpBearer):
    """`Authorization: Bearer crl_...`: the request acts as the token's holder."""

    def authenticate(self, request: HttpRequest, token: str) -> Actor | None:
        return tokens.authenticate(token.strip())
