"""Error pages in the panel's own look (Django's defaults carry inline styles that our
Content-Security-Policy refuses)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "panel/csrf_failure.html", status=403)
