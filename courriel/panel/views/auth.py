"""Signing in and out (chapter 2), choosing the language, and where each role lands."""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from courriel.accounts.models import Mailbox
from courriel.accounts.permissions import visible_domains
from courriel.accounts.services.mailboxes import modify_mailbox
from courriel.accounts.signin import Attempt, Door, Outcome, attempt, throttled_message
from courriel.panel.roles import actor_for, impersonating, real_actor

MAX_USERNAME = 254
MAILBOX_BACKEND = "courriel.accounts.auth.MailboxBackend"
ADMIN_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _safe_next(request: HttpRequest, default: str = "/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _remember_language(response: HttpResponse, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


def _login_page(
    request: HttpRequest, error: str = "", status: int = 200, username: str = ""
) -> HttpResponse:
    return render(
        request,
        "panel/login.html",
        {"error": error, "username": username, "next": _safe_next(request, "")},
        status=status,
    )


def _first_visit(request: HttpRequest) -> HttpResponse:
    if actor_for(request) is not None:
        return redirect(_safe_next(request))
    return _login_page(request)


def _after_attempt(request: HttpRequest, username: str, result: Attempt) -> HttpResponse:
    """The same answer for an unknown login and a wrong password (no way to learn which
    logins exist); a disabled login is told so only when the password is right."""
    if result.ok:
        user = result.mailbox if result.mailbox is not None else result.user
        return _signed_in(request, user)
    if result.outcome is Outcome.THROTTLED:
        return _login_page(request, throttled_message(result.wait), 429, username)
    if result.outcome is Outcome.DISABLED:
        error = _("This login is temporarily disabled: ask the domain owner.")
        return _login_page(request, error, 403, username)
    error = _("Login failed: check the username and password and try again.")
    return _login_page(request, error, 401, username)


async def login_view(request: HttpRequest) -> HttpResponse:
    """Sign-in (chapter 2), through `courriel.accounts.signin` like every other door.
    Asynchronous so that a login being guessed from many addresses can be slowed down
    (a few seconds between checks) without holding up anyone else's pages."""
    if request.method != "POST":
        return await sync_to_async(_first_visit)(request)
    username = request.POST.get("username", "").strip()[:MAX_USERNAME]
    password = request.POST.get("password", "")
    ip = client_ip(request)
    result = await sync_to_async(attempt)(username, password, ip, Door.PANEL)
    if result.outcome is Outcome.SLOWED:
        await asyncio.sleep(result.delay)
        result = await sync_to_async(attempt)(username, password, ip, Door.PANEL, paced=True)
    return await sync_to_async(_after_attempt)(request, username, result)


def _signed_in(request: HttpRequest, user: object) -> HttpResponse:
    backend = MAILBOX_BACKEND if isinstance(user, Mailbox) else ADMIN_BACKEND
    login(request, user, backend=backend)  # type: ignore[arg-type]
    if request.POST.get("remember"):
        request.session.set_expiry(settings.SESSION_COOKIE_AGE)  # "remember login permanently"
    else:
        request.session.set_expiry(0)  # ends with the browser
    response = redirect(_safe_next(request))
    if isinstance(user, Mailbox) and user.language:
        _remember_language(response, user.language)
    return response


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("login")


@require_POST
def language_view(request: HttpRequest) -> HttpResponse:
    """The language switcher: a cookie for everyone, and the mailbox's own preference
    for a mailbox user (so it follows them to another browser)."""
    language = request.POST.get("language", "")
    response = HttpResponseRedirect(_safe_next(request))
    if language not in dict(settings.LANGUAGES):
        return response
    _remember_language(response, language)
    actor = real_actor(request)
    user = getattr(request, "user", None)
    if (
        actor is not None
        and isinstance(user, Mailbox)
        and impersonating(request) is None
        and user.language != language
    ):
        modify_mailbox(actor, user, language=language)
    return response


def home(request: HttpRequest) -> HttpResponse:
    """Each role lands on its own first page: the provider on the overview, an owner
    on their domain's information (chapter 3), a mailbox user on self-service."""
    actor = actor_for(request)
    if actor is None:
        return redirect("login")
    if actor.is_provider:
        from courriel.panel.views.provider import overview

        return overview(request)
    if actor.role == "owner":
        domain = visible_domains(actor).filter(parent__isnull=True).first()
        if domain is not None:
            return redirect("domain-info", domain=domain.name)
    return redirect("me")
