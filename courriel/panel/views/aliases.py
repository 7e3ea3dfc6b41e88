"""Mail aliases (chapter 10): the list, add and edit in basic mode, delete selected."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from courriel.accounts.models import Domain
from courriel.accounts.permissions import Actor
from courriel.accounts.schemas import AliasOut
from courriel.accounts.services import aliases as alias_service
from courriel.accounts.services.lookup import alias_rows
from courriel.errors import CourrielError
from courriel.panel.forms.aliases import AliasForm
from courriel.panel.forms.mailboxes import SearchForm
from courriel.panel.roles import domain_view
from courriel.panel.views.common import (
    address_lookup,
    confirm_page,
    confirmed,
    page_of,
    posted,
    selected,
)


@domain_view
def alias_list(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """The domain's aliases and the mailboxes' additional addresses, in one list."""
    search = SearchForm(request.GET)
    term = search.term()
    page = page_of(request, alias_rows(actor, domain, term))
    rows = [
        (AliasOut.of(row.alias), None) if row.alias_id else (None, row)  # type: ignore[arg-type]
        for row in page.object_list
    ]
    return render(
        request,
        "panel/aliases/list.html",
        {
            "domain": domain,
            "page": page,
            "rows": rows,
            "search": search,
            "searched": bool(term),
            "lookup": address_lookup(actor, domain, term),
        },
    )


@domain_view
def alias_new(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """Add an alias to this domain in basic mode."""
    form = AliasForm(posted(request))
    if request.method == "POST" and form.is_valid():
        values = form.service_values()
        try:
            alias = alias_service.create_alias(actor, domain, values.pop("name"), **values)
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(
                request, _("Alias %(email)s created.") % {"email": alias_service.alias_email(alias)}
            )
            return redirect("aliases", domain=domain.name)
    return render(
        request, "panel/aliases/edit.html", {"domain": domain, "form": form, "creating": True}
    )


@domain_view
def alias_edit(request: HttpRequest, actor: Actor, domain: Domain, name: str) -> HttpResponse:
    alias = alias_service.get_alias(actor, domain, name)
    shown = AliasOut.of(alias)
    form = AliasForm(posted(request), initial=AliasForm.initial_from(shown))
    if request.method == "POST" and form.is_valid():
        changes = form.edit_changes(shown)
        try:
            if changes:
                alias_service.modify_alias(actor, alias, **changes)
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(
                request, _("Alias %(email)s saved.") % {"email": alias_service.alias_email(alias)}
            )
            return redirect("aliases", domain=domain.name)
    return render(
        request,
        "panel/aliases/edit.html",
        {"domain": domain, "form": form, "alias": shown, "creating": False},
    )


@require_POST
@domain_view
def delete_selected(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """Delete Selected Aliases, after a confirmation that lists them."""
    names = selected(request)
    if not names:
        messages.error(request, _("Select the aliases to delete first."))
        return redirect("aliases", domain=domain.name)
    targets = [alias_service.get_alias(actor, domain, name) for name in names]
    if not confirmed(request):
        return confirm_page(
            request,
            title=_("Delete Selected Aliases"),
            message=_("Mail to these addresses will no longer be accepted:"),
            items=[alias_service.alias_email(alias) for alias in targets],
            fields=[("selected", name) for name in names],
            button=ngettext("Delete %(count)d alias", "Delete %(count)d aliases", len(targets))
            % {"count": len(targets)},
            cancel=reverse("aliases", kwargs={"domain": domain.name}),
        )
    deleted = alias_service.delete_aliases(actor, targets)
    messages.success(request, _("Deleted: %(emails)s.") % {"emails": ", ".join(deleted)})
    return redirect("aliases", domain=domain.name)
