"""Backups (chapter 12): the provider's overview of snapshots, dumps and the last run;
restores of a domain, a mailbox, a folder or a message (the provider: any domain; an
owner: their own domain's mailboxes, from its page); mailbox downloads."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from courriel.accounts.models import Domain
from courriel.accounts.permissions import Actor
from courriel.backup import services as backup_service
from courriel.backup.download import open_download
from courriel.backup.restore import RestoreIncomplete, RestoreReport
from courriel.errors import CourrielError, NotFoundError
from courriel.panel.forms.backups import RestoreForm
from courriel.panel.roles import domain_view, provider_only, signed_in
from courriel.panel.views.common import posted
from courriel.panel.views.selfservice import own_mailbox
from courriel.web.streaming import attachment

SHOWN_RESTORED = 200  # restored messages listed on the page; the count says the rest


def _restore(
    request: HttpRequest, actor: Actor, form: RestoreForm, domain: Domain | None
) -> RestoreReport | None:
    """Run the restore the form asks for; a refusal (over quota, not in the snapshot)
    lands on the form, and a restore cut short by the disk shows what it did."""
    if request.method != "POST" or not form.is_valid():
        return None
    name = domain.name if domain is not None else form.cleaned_data["domain"]
    try:
        report = backup_service.restore(actor, name, **form.service_values())
    except RestoreIncomplete as error:
        form.refuse(error)
        return error.report
    except CourrielError as error:
        form.refuse(error)
        return None
    return report


def _page(
    request: HttpRequest,
    template: str,
    form: RestoreForm,
    report: RestoreReport | None,
    **context: Any,
) -> HttpResponse:
    shown = report.restored[:SHOWN_RESTORED] if report else []
    return render(request, template, {"form": form, "report": report, "restored": shown, **context})


@provider_only
def provider_backups(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Where the backups are, how the last run went, every snapshot and database dump,
    and a restore of anything."""
    overview = backup_service.overview(actor)
    form = RestoreForm(posted(request), snapshots=overview["snapshots"], with_domain=True)
    report = _restore(request, actor, form, None)
    return _page(request, "panel/backups/provider.html", form, report, overview=overview)


@domain_view
def domain_backups(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """The snapshots that hold this customer's mail, and a restore of its mailboxes."""
    snapshots = backup_service.list_snapshots(actor, domain)
    form = RestoreForm(posted(request), snapshots=snapshots, with_domain=False)
    report = _restore(request, actor, form, domain)
    return _page(
        request,
        "panel/backups/domain.html",
        form,
        report,
        domain=domain,
        snapshots=snapshots,
    )


# --- downloads ----------------------------------------------------------------------


def _download(
    request: HttpRequest, actor: Actor, login: str, domain: str | None = None
) -> HttpResponse:
    """The mailbox as mbox (`?format=mbox`, the default) or a Maildir .tar.gz
    (`?format=maildir`), made while it is sent."""
    try:
        download = open_download(actor, login, request.GET.get("format", "mbox"), domain=domain)
    except NotFoundError:
        raise Http404 from None
    return attachment(request, download)


@domain_view
def user_download(request: HttpRequest, actor: Actor, domain: Domain, login: str) -> HttpResponse:
    return _download(request, actor, login, domain.name)


@signed_in
def own_download(request: HttpRequest, actor: Actor) -> HttpResponse:
    return _download(request, actor, own_mailbox(actor).login)
