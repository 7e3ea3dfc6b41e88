"""Signing in and out (chapter 2), choosing the language, and where each role lands."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from courriel.accounts.models import Mailbox
from courriel.accounts.permissions import visible_domains
from courriel.accounts.services import twofactor
from courriel.accounts.services.mailboxes import modify_mailbox
from courriel.accounts.signin import (
    Attempt,
    Door,
    Outcome,
    attempt,
    second_factor,
    throttled_message,
)
from courriel.panel.roles import actor_for, impersonating, real_actor

if TYPE_CHECKING:
    from django.contrib.auth.models import User

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
        holder = result.mailbox if result.mailbox is not None else result.user
        assert holder is not None
        if twofactor.enabled(holder) is not None:
            request.session[PENDING_2FA] = {
                "mailbox" if isinstance(holder, Mailbox) else "user": holder.pk,
                "at": time.time(),
                "remember": bool(request.POST.get("remember")),
                "next": _safe_next(request),
            }
            return redirect("login-code")
        return _signed_in(request, holder, bool(request.POST.get("remember")), _safe_next(request))
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


def _signed_in(
    request: HttpRequest, user: Mailbox | User, remember: bool, next_url: str
) -> HttpResponse:
    backend = MAILBOX_BACKEND if isinstance(user, Mailbox) else ADMIN_BACKEND
    login(request, user, backend=backend)  # type: ignore[arg-type]
    if remember:
        request.session.set_expiry(settings.SESSION_COOKIE_AGE)  # "remember login permanently"
    else:
        request.session.set_expiry(0)  # ends with the browser
    if twofactor.required(user) and twofactor.enabled(user) is None:
        request.session[MUST_ENROL] = True  # every page leads to the Security page
        messages.warning(
            request,
            _("Your provider requires two-factor sign-in: turn it on to use the panel."),
        )
        next_url = reverse("security")
    response = redirect(next_url)
    if isinstance(user, Mailbox) and user.language:
        _remember_language(response, user.language)
    return response


PENDING_2FA = "courriel_2fa_pending"
MUST_ENROL = "courriel_must_enrol"
CODE_WAIT = 300  # seconds between the password and the code


def _pending_holder(request: HttpRequest) -> tuple[Mailbox | User | None, dict[str, Any]]:
    from django.contrib.auth.models import User

    pending = request.session.get(PENDING_2FA) or {}
    if not pending or time.time() - float(pending.get("at", 0)) > CODE_WAIT:
        return None, {}
    if "mailbox" in pending:
        found: Mailbox | User | None = Mailbox.objects.filter(
            pk=pending["mailbox"], login_disabled=False
        ).first()
    else:
        found = User.objects.filter(pk=pending.get("user"), is_active=True).first()
    return found, pending


@sensitive_post_parameters("code")
def login_code(request: HttpRequest) -> HttpResponse:
    """The second step of a two-factor sign-in: a code from the app (or a recovery
    code), within 5 minutes of the password."""
    holder, pending = _pending_holder(request)
    if holder is None:
        request.session.pop(PENDING_2FA, None)
        return redirect("login")
    error, status = "", 200
    if request.method == "POST":
        result = second_factor(holder, request.POST.get("code", ""), client_ip(request))
        if result.ok:
            del request.session[PENDING_2FA]
            return _signed_in(request, holder, bool(pending["remember"]), pending["next"])
        if result.outcome is Outcome.THROTTLED:
            error, status = throttled_message(result.wait), 429
        else:
            error, status = (
                _(
                    "This code is not right: type the six digits your app shows now, "
                    "or one of your recovery codes."
                ),
                401,
            )
    return render(request, "panel/login_code.html", {"error": error}, status=status)


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
