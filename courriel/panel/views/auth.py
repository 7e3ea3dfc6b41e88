"""Signing in and out (chapter 2), choosing the language, and where each role lands."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from courriel.accounts.models import Mailbox
from courriel.accounts.permissions import visible_domains
from courriel.accounts.services.mailboxes import modify_mailbox
from courriel.accounts.throttle import throttle
from courriel.panel.roles import actor_for, impersonating, real_actor

MAX_USERNAME = 254


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


def login_view(request: HttpRequest) -> HttpResponse:
    """The same answer for an unknown login and a wrong password (no way to learn
    which logins exist); failures are throttled per login and per client address."""
    if request.method != "POST" and actor_for(request) is not None:
        return redirect(_safe_next(request))
    error, status = "", 200
    username = ""
    if request.method == "POST":
        username = request.POST.get("username", "").strip()[:MAX_USERNAME]
        password = request.POST.get("password", "")
        ip = client_ip(request)
        wait = throttle.retry_after(username, ip)
        if wait:
            minutes = max(1, (wait + 59) // 60)
            error = ngettext(
                "Too many failed logins. Wait %(minutes)d minute and try again.",
                "Too many failed logins. Wait %(minutes)d minutes and try again.",
                minutes,
            ) % {"minutes": minutes}
            status = 429
        else:
            user = authenticate(request, username=username, password=password)
            if user is not None:
                throttle.succeeded(username)
                return _signed_in(request, user)
            if getattr(request, "courriel_login_disabled", False):
                error = _("This login is temporarily disabled: ask the domain owner.")
                status = 403
            else:
                throttle.failed(username, ip)
                error = _("Login failed: check the username and password and try again.")
                status = 401
    return render(
        request,
        "panel/login.html",
        {"error": error, "username": username, "next": _safe_next(request, "")},
        status=status,
    )


def _signed_in(request: HttpRequest, user: object) -> HttpResponse:
    login(request, user, backend=user.backend)  # type: ignore[attr-defined,arg-type]
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
