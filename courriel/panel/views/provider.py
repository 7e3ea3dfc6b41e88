"""The provider's pages: overview, hosting servers, plans (chapter 4), every domain,
creating a customer's mail domain (chapter 1), looking at the panel as an owner, and
the audit log."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.models import User
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from courriel.accounts.models import Domain, HostingServer, Mailbox, Plan
from courriel.accounts.permissions import Actor, get_domain, visible_domains
from courriel.accounts.services import domains as domain_service
from courriel.accounts.services import ownership
from courriel.accounts.services import plans as plan_service
from courriel.accounts.services import servers as server_service
from courriel.accounts.setup_summary import setup_facts
from courriel.audit.log import entries_for, record
from courriel.errors import CourrielError, NotFoundError
from courriel.panel.forms.domains import CustomerDomainForm
from courriel.panel.forms.mailboxes import SearchForm
from courriel.panel.forms.provider import AuditFilterForm, PlanForm, ServerForm
from courriel.panel.roles import IMPERSONATION_KEY, impersonating, provider_only, real_actor
from courriel.panel.views.common import confirm_page, confirmed, page_of, posted, report, show_once


@provider_only
def overview(request: HttpRequest, actor: Actor) -> HttpResponse:
    """System Information for the provider: what is hosted, and the latest changes."""
    return render(
        request,
        "panel/provider/overview.html",
        {
            "counts": {
                "domains": Domain.objects.filter(parent__isnull=True).count(),
                "subservers": Domain.objects.filter(parent__isnull=False).count(),
                "mailboxes": Mailbox.objects.count(),
                "servers": HostingServer.objects.count(),
                "plans": Plan.objects.count(),
                "admins": User.objects.filter(is_staff=True).count(),
            },
            "recent": entries_for(actor)[:10],
            "nodes": _nodes(),
        },
    )


def _nodes() -> list[object]:
    """Every hosting server with how it is doing, once several run as one platform
    (from their heartbeats: one that stopped answering shows so within a minute)."""
    from courriel.cluster.models import Node
    from courriel.cluster.status import platform_status

    if not Node.objects.exists():
        return []
    return platform_status()


# --- hosting servers ---------------------------------------------------------------------


@provider_only
def servers(request: HttpRequest, actor: Actor) -> HttpResponse:
    form = ServerForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            server = server_service.add_server(actor, **form.cleaned_data)
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(request, _("Hosting server %(name)s added.") % {"name": server.name})
            return redirect("provider-servers")
    return render(
        request,
        "panel/provider/servers.html",
        {"servers": server_service.list_servers(), "form": form},
    )


def _server(name: str) -> HostingServer:
    try:
        return server_service.get_server(name)
    except NotFoundError:
        raise Http404 from None


@provider_only
def server_edit(request: HttpRequest, actor: Actor, name: str) -> HttpResponse:
    server = _server(name)
    form = ServerForm(posted(request), editing=True, initial=ServerForm.initial_from(server))
    if request.method == "POST" and form.is_valid():
        changes = form.changes(ServerForm.initial_from(server))
        try:
            if changes:
                server_service.modify_server(actor, server, **changes)
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(request, _("Hosting server %(name)s saved.") % {"name": server.name})
            return redirect("provider-servers")
    return render(request, "panel/provider/server_edit.html", {"server": server, "form": form})


@require_POST
@provider_only
def server_delete(request: HttpRequest, actor: Actor, name: str) -> HttpResponse:
    server = _server(name)
    if not confirmed(request):
        return confirm_page(
            request,
            title=_("Delete hosting server"),
            message=_("This hosting server is removed from the list:"),
            items=[f"{server.name} ({server.hostname})"],
            button=_("Delete hosting server"),
            cancel=reverse("provider-servers"),
        )
    report(
        request,
        lambda: server_service.delete_server(actor, server),
        lambda _done: _("Hosting server %(name)s deleted.") % {"name": server.name},
    )
    return redirect("provider-servers")


# --- plans -------------------------------------------------------------------------------


@provider_only
def plans(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Chapter 4's table of plans, with how many domains use each."""
    rows = Plan.objects.annotate(domain_count=Count("domain")).order_by("id")
    return render(request, "panel/provider/plans.html", {"plans": rows})


@provider_only
def plan_new(request: HttpRequest, actor: Actor) -> HttpResponse:
    form = PlanForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            plan = plan_service.create_plan(
                actor, form.cleaned_data["name"], label=form.cleaned_data["label"], **form.limits()
            )
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(request, _("Plan %(name)s created.") % {"name": plan.name})
            return redirect("provider-plans")
    return render(request, "panel/provider/plan_edit.html", {"form": form, "creating": True})


def _plan(name: str) -> Plan:
    try:
        return plan_service.get_plan(name)
    except NotFoundError:
        raise Http404 from None


@provider_only
def plan_edit(request: HttpRequest, actor: Actor, name: str) -> HttpResponse:
    plan = _plan(name)
    form = PlanForm(posted(request), editing=True, initial=PlanForm.initial_from(plan))
    if request.method == "POST" and form.is_valid():
        changes = form.changes(PlanForm.initial_from(plan))
        label = changes.pop("label", None)
        try:
            plan_service.modify_plan(actor, plan, label=label, **changes)
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(request, _("Plan %(name)s saved.") % {"name": plan.name})
            return redirect("provider-plans")
    return render(
        request, "panel/provider/plan_edit.html", {"form": form, "plan": plan, "creating": False}
    )


@require_POST
@provider_only
def plan_delete(request: HttpRequest, actor: Actor, name: str) -> HttpResponse:
    plan = _plan(name)
    if not confirmed(request):
        return confirm_page(
            request,
            title=_("Delete plan"),
            message=_("This plan can no longer be given to new domains:"),
            items=[str(plan)],
            button=_("Delete plan"),
            cancel=reverse("provider-plans"),
        )
    report(
        request,
        lambda: plan_service.delete_plan(actor, plan),
        lambda _done: _("Plan %(name)s deleted.") % {"name": plan.name},
    )
    return redirect("provider-plans")


# --- domains -----------------------------------------------------------------------------


@provider_only
def domains(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Every customer domain, searched and shown a page at a time."""
    search = SearchForm(request.GET)
    found = (
        visible_domains(actor)
        .select_related(None)
        .select_related("plan", "server", "owner", "parent")
        .order_by("name")
    )
    term = search.term().lower()
    if term:
        found = found.filter(
            Q(name__icontains=term)
            | Q(owner__login__icontains=term)
            | Q(description__icontains=term)
        )
    page = page_of(request, found)
    # Mailboxes are counted for the 50 domains shown only (one grouped query), not for
    # every domain of the provider before paging.
    page.object_list = list(page.object_list)
    counts = dict(
        Mailbox.objects.filter(domain__in=page.object_list)
        .values_list("domain")
        .annotate(n=Count("pk"))
        .values_list("domain", "n")
    )
    for domain in page.object_list:
        domain.mailbox_count = counts.get(domain.pk, 0)
    return render(
        request,
        "panel/provider/domains.html",
        {"page": page, "search": search, "pending_aliases": ownership.pending_aliases(actor)},
    )


@sensitive_post_parameters("password_1")
@provider_only
def domain_new(request: HttpRequest, actor: Actor) -> HttpResponse:
    """Set up a customer's mail domain; the owner's password is shown once."""
    form = CustomerDomainForm(posted(request), initial={"plan": "recommended"})
    if request.method == "POST" and form.is_valid():
        try:
            created = domain_service.create_domain(
                actor, form.cleaned_data["name"], **form.service_values()
            )
        except CourrielError as error:
            form.refuse(error)
        else:
            return show_once(
                request,
                "panel/provider/domain_created.html",
                {
                    "domain": created.domain,
                    "facts": setup_facts(created.domain, created.password),
                    "password_shown": bool(created.password),
                    "mailed_to": created.setup_mail_to,
                    "withheld": created.setup_mail_withheld,
                },
            )
    return render(request, "panel/provider/domain_new.html", {"form": form})


@require_POST
@provider_only
def impersonate(request: HttpRequest, actor: Actor, name: str) -> HttpResponse:
    """Look at the panel exactly as the domain's owner does (audited, with a banner
    and a way back)."""
    try:
        domain = get_domain(actor, name)
    except NotFoundError:
        raise Http404 from None
    owner = domain.top.owner
    if owner is None:
        raise Http404
    record(actor, "panel.impersonate", owner.login, domain=domain.top.name)
    request.session[IMPERSONATION_KEY] = owner.pk
    return redirect("domain-info", domain=domain.top.name)


@require_POST
def impersonate_stop(request: HttpRequest) -> HttpResponse:
    owner = impersonating(request)
    actor = real_actor(request)
    request.session.pop(IMPERSONATION_KEY, None)
    if owner is None or actor is None:
        return redirect("home")
    record(actor, "panel.impersonate_end", owner.login, domain=owner.domain.top.name)
    return redirect("provider-domains")


@provider_only
def audit(request: HttpRequest, actor: Actor) -> HttpResponse:
    filters = AuditFilterForm(request.GET)
    entries = filters.apply(entries_for(actor))
    return render(
        request, "panel/audit.html", {"page": page_of(request, entries), "filters": filters}
    )
