"""The provider's outbound queue: what waits for which recipients and why (the last
error), one entry with its message headers, retry now, delete with confirmation."""

from __future__ import annotations

import time

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from courriel.accounts.permissions import Actor
from courriel.errors import NotFoundError
from courriel.outbound import services as queue_service
from courriel.outbound.admin import running_pid
from courriel.outbound.spool import Entry
from courriel.panel.roles import provider_only
from courriel.panel.views.common import confirm_page, confirmed, page_of, report, selected


@provider_only
def queue_list(request: HttpRequest, actor: Actor) -> HttpResponse:
    entries = queue_service.list_entries(actor)
    return render(
        request,
        "panel/provider/queue.html",
        {
            "page": page_of(request, entries),
            "total": len(entries),
            "running": running_pid(),
            "now": time.time(),
        },
    )


@provider_only
def queue_entry(request: HttpRequest, actor: Actor, entry_id: str) -> HttpResponse:
    try:
        shown = queue_service.show_entry(actor, entry_id[:64])
    except NotFoundError:
        raise Http404 from None
    return render(
        request,
        "panel/provider/queue_entry.html",
        {"entry": shown.entry, "headers": shown.headers},
    )


def _back(request: HttpRequest) -> HttpResponse:
    return redirect("provider-queue")


@require_POST
@provider_only
def queue_retry(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Retry the ticked entries now, or every entry ("Retry all now")."""
    ids = None if request.POST.get("all") == "yes" else selected(request)
    if ids == []:
        messages.error(request, _("Select the queued messages to retry first."))
        return _back(request)
    report(
        request,
        lambda: queue_service.retry_entries(actor, ids),
        lambda count: (
            ngettext(
                "%(count)d queued message is due now.",
                "%(count)d queued messages are due now.",
                count,
            )
            % {"count": count}
            + " "
            + (
                _("The running server tries at once.")
                if running_pid()
                else _("They are tried when the server starts.")
            )
        ),
    )
    return _back(request)


@require_POST
@provider_only
def queue_delete(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Delete the ticked entries without delivering them, after a confirmation that
    lists them."""
    ids = selected(request)
    if not ids:
        messages.error(request, _("Select the queued messages to delete first."))
        return _back(request)
    if not confirmed(request):
        entries = _still_queued(actor, ids)
        if not entries:
            raise Http404
        return confirm_page(
            request,
            title=_("Delete queued messages"),
            message=_(
                "These messages are deleted without being delivered; their senders get no bounce:"
            ),
            items=[
                _("%(id)s from %(sender)s to %(recipients)s")
                % {
                    "id": e.id,
                    "sender": e.sender or "<>",
                    "recipients": ", ".join(r.address for r in e.pending) or "—",
                }
                for e in entries
            ],
            fields=[("selected", e.id) for e in entries],
            button=ngettext("Delete %(count)d message", "Delete %(count)d messages", len(entries))
            % {"count": len(entries)},
            cancel=reverse("provider-queue"),
        )
    report(
        request,
        lambda: queue_service.delete_entries(actor, ids),
        lambda count: (
            ngettext(
                "%(count)d queued message deleted.", "%(count)d queued messages deleted.", count
            )
            % {"count": count}
        ),
    )
    return _back(request)


def _still_queued(actor: Actor, entry_ids: list[str]) -> list[Entry]:
    """The entries of these ids that have not been delivered meanwhile."""
    found = []
    for entry_id in entry_ids:
        try:
            found.append(queue_service.show_entry(actor, entry_id).entry)
        except NotFoundError:
            continue
    return found
