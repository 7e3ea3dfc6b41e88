"""The API object: /api/v1/, bearer tokens, OpenAPI at /api/v1/openapi.json and its
browsable documentation at /api/v1/docs."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from ninja import NinjaAPI, Swagger

import courriel
from courriel.api import (
    aliases,
    domains,
    filtering,
    greylist,
    mailboxes,
    me,
    moves,
    provider,
    statistics,
)
from courriel.api.auth import TokenAuth
from courriel.errors import CourrielError


class LocalSwagger(Swagger):
    """The docs page with django-ninja's own copy of Swagger UI, served by us: ninja
    would use a CDN because it is not an installed app (see settings.STATICFILES_DIRS)."""

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        settings = {**self.settings, "url": self.get_openapi_url(api, kwargs)}
        context = {
            "swagger_settings": json.dumps(settings, indent=1),
            "api": api,
            "add_csrf": False,  # bearer tokens, no session cookie: nothing to forge
        }
        return render(request, self.template, context)


api = NinjaAPI(
    title="Courriel API",
    version=courriel.__version__,
    description=(
        "Everything the panel does, for scripts. Authenticate with "
        "`Authorization: Bearer <token>` (tokens are made in the panel, page API tokens, "
        "or with `courriel token create`). Lists are paged with `limit` and `offset`."
    ),
    auth=TokenAuth(),
    urls_namespace="api",
    docs=LocalSwagger(),
)


@api.exception_handler(CourrielError)
def courriel_error(request: HttpRequest, error: CourrielError) -> HttpResponse:
    """A refusal from the services, with its message (what to do next) and the field
    it is about."""
    return api.create_response(
        request, {"detail": error.message, "field": error.field}, status=error.http_status
    )


for module in (provider, domains, mailboxes, aliases, me, greylist, filtering, statistics, moves):
    api.add_router("/", module.router)
