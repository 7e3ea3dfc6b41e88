"""Greylisting (chapter 13) in the panel: the provider's status page with the search
that answers "why was my mail delayed, and when will it arrive?", whitelist editing
and postgrey imports; the owner's per-domain and per-mailbox switches and the same
search, limited by the services to the owner's own domains."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from courriel.accounts.models import Domain
from courriel.accounts.permissions import Actor
from courriel.errors import CourrielError
from courriel.greylist import services as greylist
from courriel.greylist.schemas import LookupOut
from courriel.panel.forms.greylist import (
    KIND_LABELS,
    DomainGreylistingForm,
    LookupForm,
    WhitelistForm,
    WhitelistImportForm,
)
from courriel.panel.roles import domain_view, provider_only
from courriel.panel.views.common import confirm_page, confirmed, page_of, posted, report, selected

LOOKUP_RESULTS = 100


def _lookup(request: HttpRequest, actor: Actor, **initial: str) -> dict[str, Any]:
    """The search form (GET) and, when something was asked, the services' answer."""
    form = LookupForm(request.GET or None, initial=initial)
    answer: LookupOut | None = None
    if form.asked():
        try:
            answer = greylist.lookup(actor, **form.service_values(), limit=LOOKUP_RESULTS)
        except CourrielError as error:
            form.refuse(error)
    return {"lookup_form": form, "answer": answer}


@provider_only
def status(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The counts, the settings in effect, and the search."""
    shown = greylist.status(actor)
    counters = [
        (_("Deferred (first attempts)"), "deferred"),
        (_("Accepted after a retry"), "passed_retry"),
        (_("Accepted: trusted triplet"), "passed_known"),
        (_("Accepted: whitelisted"), "passed_whitelist"),
        (_("Accepted: auto-whitelisted network"), "passed_auto"),
        (_("Decided without the store (store errors)"), "store_errors"),
    ]
    periods = (shown.today, shown.last_7_days, shown.total)
    rows = [(label, [getattr(p, name) for p in periods]) for label, name in counters]
    return render(
        request,
        "panel/greylist/status.html",
        {"status": shown, "rows": rows, **_lookup(request, actor)},
    )


@require_POST
@provider_only
def purge(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Forget expired triplets and networks now (the engine also does it on a schedule)."""
    report(
        request,
        lambda: greylist.purge(actor),
        lambda done: (
            _("Expired entries purged: %(triplets)d triplets, %(networks)d networks.")
            % {"triplets": done.triplets, "networks": done.networks}
        ),
    )
    return redirect("provider-greylisting")


# --- whitelists ---------------------------------------------------------------------------


def _entry_key(kind: str, value: str) -> str:
    """A ticked box's value: entries never contain spaces (clean_value refuses them)."""
    return f"{kind} {value}"


@provider_only
def whitelist(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The provider's entries (editable), the shipped default list (read only), add
    one entry, import a postgrey file."""
    form = WhitelistForm(posted(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            entry = greylist.add_whitelist(actor, data["kind"], data["value"], data["comment"])
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(
                request,
                _("%(value)s added to the whitelist (%(kind)s).")
                % {"value": entry.value, "kind": KIND_LABELS[entry.kind]},
            )
            return redirect("provider-greylisting-whitelist")
    entries = greylist.list_whitelist(actor)
    own = [e for e in entries if e.source != "default"]
    shipped = [e for e in entries if e.source == "default"]
    return render(
        request,
        "panel/greylist/whitelist.html",
        {
            "page": page_of(request, own),
            "own_count": len(own),
            "shipped": shipped,
            "form": form,
            "import_form": WhitelistImportForm(),
            "kinds": KIND_LABELS,
        },
    )


@require_POST
@provider_only
def whitelist_remove(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Remove the ticked entries, after a confirmation that lists them."""
    keys = [key.split(" ", 1) for key in selected(request) if " " in key]
    if not keys:
        messages.error(request, _("Select the whitelist entries to remove first."))
        return redirect("provider-greylisting-whitelist")
    if not confirmed(request):
        return confirm_page(
            request,
            title=_("Remove whitelist entries"),
            message=_("Mail matching these entries is greylisted again:"),
            items=[f"{value} ({KIND_LABELS.get(kind, kind)})" for kind, value in keys],
            fields=[("selected", _entry_key(kind, value)) for kind, value in keys],
            button=ngettext("Remove %(count)d entry", "Remove %(count)d entries", len(keys))
            % {"count": len(keys)},
            cancel=reverse("provider-greylisting-whitelist"),
        )

    def remove_all() -> int:
        for kind, value in keys:
            greylist.remove_whitelist(actor, kind, value)
        return len(keys)

    report(
        request,
        remove_all,
        lambda count: (
            ngettext(
                "%(count)d whitelist entry removed.", "%(count)d whitelist entries removed.", count
            )
            % {"count": count}
        ),
    )
    return redirect("provider-greylisting-whitelist")


@provider_only
def whitelist_import(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Move over from postgrey: its whitelist files, pasted or uploaded. Every line is
    checked first; nothing is imported when one is wrong, and the page says which."""
    form = WhitelistImportForm(posted(request), request.FILES or None)
    done = None
    if request.method == "POST" and form.is_valid():
        try:
            done = greylist.import_whitelist(
                actor, form.cleaned_data["kind"], form.cleaned_data["text"], form.source()
            )
        except CourrielError as error:
            form.refuse(error)
    return render(request, "panel/greylist/import.html", {"import_form": form, "done": done})


# --- a domain owner's switches and search -------------------------------------------------


def greylisting_context(actor: Actor, domain: Domain) -> dict[str, Any]:
    """The switch shown on Virtual Server Details."""
    current = greylist.domain_greylisting(actor, domain)
    form = DomainGreylistingForm(
        provider=actor.is_provider, initial=DomainGreylistingForm.initial_from(current)
    )
    return {"greylisting": current, "greylisting_form": form}


@require_POST
@domain_view
def domain_switch(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """Greylisting on or off for the domain (and, for the provider, its delay)."""
    current = greylist.domain_greylisting(actor, domain)
    form = DomainGreylistingForm(request.POST, provider=actor.is_provider)
    if not form.is_valid():
        messages.error(request, _("The greylisting settings were not understood."))
    elif changes := form.service_changes(current):
        report(
            request,
            lambda: greylist.set_domain_greylisting(actor, domain, **changes),
            lambda done: (
                (
                    _("Greylisting is on for %(domain)s.")
                    if done.enabled
                    else _("Greylisting is off for %(domain)s: its mail is never delayed.")
                )
                % {"domain": domain.display_name}
            ),
        )
    return redirect(reverse("domain-details", kwargs={"domain": domain.name}) + "#greylisting")


@domain_view
def domain_lookup(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """The owner's "why was my mail delayed?": mail to their own domains only."""
    return render(
        request,
        "panel/greylist/domain_lookup.html",
        {
            "domain": domain,
            "greylisting": greylist.domain_greylisting(actor, domain),
            **_lookup(request, actor, recipient=domain.name),
        },
    )
