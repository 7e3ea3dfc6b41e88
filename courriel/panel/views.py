"""Panel views: sign-in (chapter 2) and the dashboard (chapter 3)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from courriel.accounts.permissions import visible_domains
from courriel.accounts.services.limits import usage
from courriel.panel.roles import actor_for


def login_view(request: HttpRequest) -> HttpResponse:
    error = ""
    if request.method == "POST":
        username = request.POST.get("username", "").strip()
        password = request.POST.get("password", "")
        user = authenticate(request, username=username, password=password)
        if user is None:
            error = _("Login failed: check the username and password and try again.")
        else:
            login(request, user, backend=user.backend)  # type: ignore[attr-defined]
            if request.POST.get("remember"):
                request.session.set_expiry(settings.SESSION_COOKIE_AGE)  # one year
            else:
                request.session.set_expiry(0)  # ends with the browser
            return redirect("home")
    return render(request, "panel/login.html", {"error": error}, status=401 if error else 200)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("login")


def home(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    if actor is None:
        return redirect("login")
    domains = list(visible_domains(actor).filter(parent__isnull=True))
    summaries = [(domain, usage(domain)) for domain in domains[:50]]
    return render(request, "panel/home.html", {"summaries": summaries})
