"""Security headers Django does not set by itself, and service errors turned into pages."""

from __future__ import annotations

from collections.abc import Callable

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render

from courriel.errors import CourrielError, NotFoundError

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CSP)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.is_secure():
            response.setdefault("Strict-Transport-Security", "max-age=15552000")
        return response


class RejectNulMiddleware:
    """No address, login or search ever contains a NUL character, and PostgreSQL
    cannot even compare one: such requests are refused before any view sees them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            message = "NUL characters are not allowed."
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain")
        return self.get_response(request)


class CourrielErrorMiddleware:
    """A service error that a view did not turn into a form error (a limit reached, a
    permission refused, an object not found) becomes a page that says what to do,
    with the status the error class carries. Another customer's object is a plain 404,
    the same page as an object that does not exist."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if request.path.startswith("/api/") or not isinstance(exception, CourrielError):
            return None
        if isinstance(exception, NotFoundError):
            return render(request, "404.html", status=404)
        return render(
            request,
            "panel/error.html",
            {"message": exception.message},
            status=exception.http_status,
        )


class TwoFactorRequiredMiddleware:
    """Someone the provider requires to use two-factor sign-in, signed in without it,
    reaches only the Security page (and can sign out or change language) until it is
    on. The flag is set at sign-in (`courriel.panel.views.auth`)."""

    ALLOWED = ("/security/", "/logout/", "/language/", "/static/", "/password-strength/", "/api/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from courriel.panel.views.auth import MUST_ENROL

        session = getattr(request, "session", None)
        if (
            session is not None
            and session.get(MUST_ENROL)
            and not request.path.startswith(self.ALLOWED)
        ):
            return HttpResponseRedirect("/security/")
        return self.get_response(request)
