"""`GET /metrics`: the provider's figures, for a Prometheus scraper or a signed-in
provider admin.

A scraper sends a provider API token (`Authorization: Bearer crl_...`, made with
`courriel token create --admin NAME` or on the panel's API tokens page; Prometheus'
`authorization: {credentials_file: ...}`), a browser the provider's panel session.
Anyone else gets 401 (no or a wrong token) or 403 (a token or
session that is not the provider's): the figures describe every customer's mail.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET

from courriel.accounts.permissions import Actor
from courriel.api.auth import TokenAuth
from courriel.metrics.figures import collect
from courriel.metrics.text import CONTENT_TYPE, render
from courriel.panel.roles import real_actor


def _caller(request: HttpRequest) -> Actor | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer":
        return TokenAuth().authenticate(request, token)
    return real_actor(request)


def _refused(status: int, text: str) -> HttpResponse:
    response = HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="courriel"'
    return response


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    caller = _caller(request)
    if caller is None:
        return _refused(401, "Send a provider API token: Authorization: Bearer crl_...")
    if not caller.is_provider:
        return _refused(403, "Only the hosting provider's tokens can read the metrics.")
    response = HttpResponse(render(collect()), content_type=CONTENT_TYPE)
    add_never_cache_headers(response)
    return response
