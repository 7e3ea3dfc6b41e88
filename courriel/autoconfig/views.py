"""Autoconfiguration endpoints. Thunderbird's and Outlook's are public (clients ask
before any password is typed) and say only what DNS already says: which server
serves a hosted domain. Apple profiles name a login, so they need a signed-in user."""

from __future__ import annotations

import re

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from courriel.accounts.addresses import normalize_domain, parse_address
from courriel.accounts.models import Domain, Mailbox
from courriel.accounts.permissions import Actor, get_mailbox
from courriel.accounts.resolution import hosted_domain
from courriel.accounts.services.mailboxes import primary_email
from courriel.autoconfig import formats
from courriel.autoconfig.settings import client_settings
from courriel.errors import ValidationError
from courriel.panel.roles import domain_view, signed_in
from courriel.panel.views.selfservice import own_mailbox

MAX_REQUEST = 16 * 1024
_EMAIL_ELEMENT = re.compile(rb"<EMailAddress>\s*([^<\s]{3,320})\s*</EMailAddress>", re.IGNORECASE)


def _hosted(name: str) -> Domain:
    try:
        domain = hosted_domain(normalize_domain(name))
    except ValidationError:
        domain = None
    if domain is None:
        raise Http404
    return domain


def _domain_of(email: str) -> tuple[Domain, str]:
    try:
        address = parse_address(email)
    except ValidationError:
        raise Http404 from None
    return _hosted(address.domain), str(address)


def _xml(body: bytes) -> HttpResponse:
    return HttpResponse(body, content_type="application/xml; charset=utf-8")


@require_GET
def thunderbird(request: HttpRequest) -> HttpResponse:
    """`/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=...`, or
    `/mail/config-v1.1.xml` asked of `autoconfig.<domain>`."""
    email = request.GET.get("emailaddress", "")[:320]
    if email:
        domain, _ = _domain_of(email)
    else:
        host = request.get_host().rsplit(":", 1)[0].lower()
        domain = _hosted(host.removeprefix("autoconfig."))
    return _xml(formats.thunderbird(client_settings(domain)))


@csrf_exempt  # Outlook posts a request document; nothing is changed by it
@require_http_methods(["GET", "POST"])
def autodiscover(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        body = request.body[: MAX_REQUEST + 1]
        if len(body) > MAX_REQUEST:
            return HttpResponse(status=413)
        match = _EMAIL_ELEMENT.search(body)
        email = match.group(1).decode("utf-8", "replace") if match else ""
    else:
        email = request.GET.get("email", "")[:320]
    if not email:
        return HttpResponse("An e-mail address is required.", status=400, content_type="text/plain")
    domain, address = _domain_of(email)
    return _xml(formats.autodiscover(client_settings(domain), address))


def _profile(mailbox: Mailbox) -> HttpResponse:
    email = primary_email(mailbox) or mailbox.login
    body = formats.mobileconfig(
        client_settings(mailbox.domain),
        email=email,
        login=mailbox.login,
        real_name=mailbox.real_name,
    )
    response = HttpResponse(body, content_type="application/x-apple-aspen-config")
    response["Content-Disposition"] = f'attachment; filename="{mailbox.login}.mobileconfig"'
    return response


@signed_in
def own_profile(request: HttpRequest, actor: Actor) -> HttpResponse:
    return _profile(own_mailbox(actor))


@domain_view
def user_profile(request: HttpRequest, actor: Actor, domain: Domain, login: str) -> HttpResponse:
    return _profile(get_mailbox(actor, login, domain))
