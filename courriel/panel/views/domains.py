"""A virtual server's pages: information (chapter 3), details (chapter 5), sub-servers,
domain aliases, its audit log, and the domain switcher."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from courriel.accounts.models import Domain
from courriel.accounts.permissions import Actor, get_domain, visible_domains
from courriel.accounts.services import domains as domain_service
from courriel.accounts.services import ownership
from courriel.accounts.services.dns import dns_records
from courriel.accounts.services.limits import counts, usage
from courriel.audit.log import entries_for
from courriel.errors import CourrielError, NotFoundError
from courriel.panel.forms.domains import (
    FEATURE_LABELS,
    DomainAliasForm,
    DomainDetailsForm,
    SubServerForm,
)
from courriel.panel.forms.provider import AuditFilterForm
from courriel.panel.roles import domain_view, signed_in
from courriel.panel.views.common import confirm_page, confirmed, page_of, posted, report
from courriel.panel.views.greylist import greylisting_context
from courriel.web.usage import recent_disk_usage

# Pages the domain switcher can keep you on when you change domain.
SWITCHABLE = {
    "domain-info",
    "domain-details",
    "users",
    "aliases",
    "passwords",
    "domain-audit",
    "domain-dns",
    "domain-backups",
    "domain-greylisting",
    "domain-statistics",
    "subserver-new",
}


PENDING_NOTICE = gettext_lazy(
    "It takes no mail until you prove that you control the name: publish the DNS record "
    "shown below, then press Check now (or ask your provider to approve it)."
)


@domain_view
def info(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """Virtual Server Information: the first page an owner sees. With sub-servers,
    what this server holds is told apart from the plan's counts over the family."""
    plan_usage = usage(domain)
    return render(
        request,
        "panel/domains/info.html",
        {
            "domain": domain,
            "usage": plan_usage,
            "own": counts(domain),
            "family": domain.is_subserver or plan_usage.servers > 1,
            "disk_used": recent_disk_usage(domain),
            "plan": domain.effective_plan,
        },
    )


def _subservers(actor: Actor, domain: Domain) -> list[Domain]:
    if domain.is_subserver:
        return []
    return list(visible_domains(actor).filter(parent=domain).order_by("name"))


@domain_view
def details(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """Virtual Server Details (chapter 5), with what the signed-in person may change."""
    form = DomainDetailsForm(
        posted(request),
        domain=domain,
        provider=actor.is_provider,
        initial=DomainDetailsForm.initial_from(domain),
    )
    if request.method == "POST" and form.is_valid():
        changes = form.service_changes(domain)
        try:
            if changes:
                domain_service.modify_domain(actor, domain, **changes)
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(request, _("Virtual server details saved."))
            return redirect("domain-details", domain=domain.name)
    return render(
        request,
        "panel/domains/details.html",
        {
            "domain": domain,
            "form": form,
            "usage": usage(domain),
            "plan": domain.effective_plan,
            "features": [FEATURE_LABELS[f] for f in domain_service.effective_features(domain)],
            "spam_filter_configured": domain_service.spam_filter_configured(),
            "subservers": _subservers(actor, domain),
            "domain_aliases": domain_service.list_domain_aliases(actor, domain),
            "alias_form": DomainAliasForm(),
            **greylisting_context(actor, domain),
        },
    )


@domain_view
def dns(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """The DNS records the customer publishes where the domain's DNS is hosted, so that
    mail reaches us and our mail for the domain is trusted."""
    records = dns_records(domain)
    return render(
        request,
        "panel/domains/dns.html",
        {"domain": domain, "records": records, "zone": [r.zone_line() for r in records]},
    )


@domain_view
def subserver_new(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """Create Virtual Server: another domain sharing the plan of this one."""
    top = domain.top
    form = SubServerForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            created = domain_service.create_domain(actor, parent=top, **form.cleaned_data)
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(
                request,
                _("Virtual server %(name)s created.") % {"name": created.domain.display_name},
            )
            if created.domain.pending:
                messages.warning(request, PENDING_NOTICE)
            return redirect("domain-info", domain=created.domain.name)
    return render(
        request,
        "panel/domains/subserver_new.html",
        {"domain": domain, "top": top, "form": form, "usage": usage(top)},
    )


@require_POST
@domain_view
def domain_alias_add(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    form = DomainAliasForm(request.POST)
    if form.is_valid():
        alias = report(
            request,
            lambda: domain_service.add_domain_alias(actor, domain, form.cleaned_data["name"]),
            lambda alias: _("Domain alias %(name)s added.") % {"name": str(alias)},
        )
        if alias is not None and alias.pending:
            messages.warning(request, PENDING_NOTICE)
    else:
        messages.error(request, _("Type the alias domain name, e.g. monsite.eu."))
    return redirect(reverse("domain-details", kwargs={"domain": domain.name}) + "#domain-aliases")


@require_POST
@domain_view
def domain_alias_delete(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    name = request.POST.get("name", "").strip()[:253]
    if not confirmed(request):
        return confirm_page(
            request,
            title=_("Delete domain alias"),
            message=_("Mail to this domain will no longer be accepted:"),
            items=[name],
            fields=[("name", name)],
            button=_("Delete domain alias"),
            cancel=reverse("domain-details", kwargs={"domain": domain.name}),
        )
    domain_service.delete_domain_alias(actor, domain, name)
    messages.success(request, _("Domain alias %(name)s deleted.") % {"name": name})
    return redirect("domain-details", domain=domain.name)


def _pending_target(request: HttpRequest, actor: Actor, domain: Domain) -> str:
    """The name a verify/approve button is about: this domain, or one of its aliases."""
    name = request.POST.get("name", "").strip()[:253] or domain.name
    found = ownership.find(actor, name)
    owner = getattr(found, "domain", found)
    if owner.pk != domain.pk:
        raise Http404
    return found.name


def _settle_claim(
    request: HttpRequest,
    actor: Actor,
    domain: Domain,
    action: Callable[[Actor, str], object],
    done: str,
) -> HttpResponse:
    name = _pending_target(request, actor, domain)
    report(request, lambda: action(actor, name), lambda found: done % {"name": str(found)})
    return redirect(reverse("domain-details", kwargs={"domain": domain.name}) + "#ownership")


@require_POST
@domain_view
def verify(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """*Check now*: look for the `_courriel-verify` TXT record of a pending name."""
    return _settle_claim(
        request, actor, domain, ownership.verify, _("%(name)s is verified: it takes mail now.")
    )


@require_POST
@domain_view
def approve(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """The provider's *Approve* for a pending name (anyone else finds nothing here)."""
    if not actor.is_provider:
        raise Http404
    return _settle_claim(
        request, actor, domain, ownership.approve, _("%(name)s is approved: it takes mail now.")
    )


@domain_view
def delete(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """Delete a sub-server (its owner may) or a whole customer domain (the provider)."""
    if not domain.is_subserver and not actor.is_provider:
        raise Http404
    if not confirmed(request):
        return confirm_page(
            request,
            title=_("Delete virtual server"),
            message=_(
                "The virtual server, its mailboxes and aliases are deleted; the mail is "
                "moved aside on the server, not destroyed:"
            ),
            items=[domain.display_name],
            button=_("Delete virtual server"),
            cancel=reverse("domain-details", kwargs={"domain": domain.name}),
        )
    parent = domain.parent
    deleted = domain_service.delete_domain(actor, domain)
    messages.success(request, _("Deleted: %(names)s.") % {"names": ", ".join(deleted)})
    if parent is not None:
        return redirect("domain-info", domain=parent.name)
    return redirect("provider-domains")


@domain_view
def move(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """Moving a customer's domain to another hosting server (the provider), with the
    progress of the move under way (the page reloads itself while it runs)."""
    from courriel.accounts.services.servers import list_servers
    from courriel.cluster.models import DomainMove
    from courriel.cluster.moves import MoveView, cancel_move, list_moves, start_move

    if not actor.is_provider or domain.is_subserver:
        raise Http404
    if request.method == "POST":
        try:
            if "cancel" in request.POST:
                cancel_move(actor, domain.name)
                messages.success(request, _("The move will stop and the copy be removed."))
            else:
                start_move(actor, domain.name, request.POST.get("to", ""))
                messages.success(request, _("The move has begun."))
        except CourrielError as error:
            messages.error(request, str(error))
        return redirect("domain-move", domain=domain.name)
    moves = [MoveView.of(m) for m in list_moves(actor, domain.name)[:10]]
    active = next((m for m in moves if m.state in DomainMove.ACTIVE), None)
    targets = [s for s in list_servers() if s.pk != domain.server_id]
    return render(
        request,
        "panel/domains/move.html",
        {"domain": domain, "moves": moves, "active": active, "targets": targets},
    )


@domain_view
def audit(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """The changes made to this customer's virtual servers, by anyone."""
    top = domain.top
    names = list(
        visible_domains(actor)
        .filter(Q(pk=top.pk) | Q(parent_id=top.pk))
        .values_list("name", flat=True)
    )
    filters = AuditFilterForm(request.GET)
    entries = filters.apply(entries_for(actor, names))
    return render(
        request,
        "panel/audit.html",
        {"domain": domain, "page": page_of(request, entries), "filters": filters},
    )


@signed_in
def switch(request: HttpRequest, actor: Actor) -> HttpResponse:
    """The domain switcher (a plain GET form, so it works without JavaScript)."""
    try:
        domain = get_domain(actor, request.GET.get("domain", "")[:253])
    except NotFoundError:
        raise Http404 from None
    section = request.GET.get("section", "domain-info")
    if section not in SWITCHABLE:
        section = "domain-info"
    try:
        return redirect(reverse(section, kwargs={"domain": domain.name}))
    except NoReverseMatch:  # pragma: no cover - every SWITCHABLE page takes a domain
        return redirect("domain-info", domain=domain.name)
