"""Mail users (chapters 6 to 9): the list, add, batch create, the Edit Mailbox page,
delete selected, and "Generate and show once"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from courriel.accounts.importer import import_rows, parse
from courriel.accounts.models import Domain, Mailbox
from courriel.accounts.permissions import Actor, get_mailbox
from courriel.accounts.schemas import MailboxOut
from courriel.accounts.services import mailboxes as mailbox_service
from courriel.accounts.services.limits import usage
from courriel.errors import CourrielError
from courriel.greylist import services as greylist
from courriel.panel.forms.mailboxes import BatchForm, MailboxForm, NewMailboxForm, SearchForm
from courriel.panel.roles import domain_view
from courriel.panel.views.common import (
    confirm_page,
    confirmed,
    keep_session,
    page_of,
    posted,
    proof_from,
    report,
    say_password_changed,
    selected,
    show_once,
)
from courriel.web.streaming import streamed_page


def searched(
    request: HttpRequest, mailboxes: QuerySet[Mailbox]
) -> tuple[QuerySet[Mailbox], SearchForm]:
    """Narrow a mailbox list to those whose login or real name contains the search."""
    search = SearchForm(request.GET)
    term = search.term()
    if term:
        mailboxes = mailboxes.filter(Q(login__icontains=term) | Q(real_name__icontains=term))
    return mailboxes, search


def account_mail_sent(address: str) -> str:
    return _("The account e-mail was sent to %(address)s.") % {"address": address}


@domain_view
def user_list(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """Mail and FTP Users: "Based on your limits, N additional mailboxes can be added"."""
    mailboxes, search = searched(request, mailbox_service.mailboxes_of(actor, domain))
    page = page_of(request, mailboxes)
    plan_quota = domain.effective_plan.mail_quota
    rows = []
    for mailbox in page.object_list:
        shown = MailboxOut.of(mailbox, with_usage=True)
        # The owner's mailbox has no quota of its own: the plan's total applies.
        quota = plan_quota if shown.owner and shown.quota is None else shown.quota
        rows.append((shown, quota))
    return render(
        request,
        "panel/mailboxes/list.html",
        {"domain": domain, "usage": usage(domain), "page": page, "rows": rows, "search": search},
    )


@sensitive_post_parameters("password_1")
@domain_view
def user_new(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """Add a user to this server, the login pre-filled with the naming convention."""
    suggested = mailbox_service.suggest_login(domain)
    form = NewMailboxForm(
        posted(request),
        initial={
            "login": suggested,
            "primary_local_part": suggested,
            "quota": domain.effective_plan.default_mailbox_quota,
            "deliver_normally": True,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            created = mailbox_service.create_mailbox(actor, domain, **form.create_values())
        except CourrielError as error:
            form.refuse(error)
        else:
            if created.account_mail_to:
                messages.success(request, account_mail_sent(created.account_mail_to))
            if created.password:
                return show_once(
                    request,
                    "panel/password_once.html",
                    {"domain": domain, "mailbox": created.mailbox, "password": created.password},
                )
            messages.success(
                request, _("Mailbox %(login)s created.") % {"login": created.mailbox.login}
            )
            return redirect("users", domain=domain.name)
    return render(
        request,
        "panel/mailboxes/edit.html",
        {"domain": domain, "form": form, "creating": True, "usage": usage(domain)},
    )


@domain_view
def batch(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """Batch create users from pasted or uploaded CSV, with a report line by line. A
    long file (up to 10,000 lines) is imported while the page is sent, with a progress
    bar that needs no JavaScript."""
    form = BatchForm(posted(request), request.FILES or None)
    reports = None
    if request.method == "POST" and form.is_valid():
        try:
            rows = parse(form.cleaned_data["text"])
        except CourrielError as error:
            form.refuse(error)
        else:
            if len(rows) > STREAM_AFTER:
                return _import_with_progress(request, actor, domain, form, rows)
            reports = list(import_rows(actor, domain, rows))
    response = render(request, "panel/mailboxes/batch.html", _batch_context(domain, form, reports))
    if reports:  # generated passwords are on the page: never cache it
        response["Cache-Control"] = "no-store"
    return response


STREAM_AFTER = 50  # lines: a longer import shows its progress
PROGRESS_MARK = "<!-- batch progress -->"


def _batch_context(domain: Domain, form: BatchForm, reports: list[Any] | None) -> dict[str, Any]:
    return {
        "domain": domain,
        "form": form,
        "reports": reports,
        "created": sum(1 for r in reports if r.ok) if reports else 0,
        "usage": usage(domain),
        "progress_mark": PROGRESS_MARK,
    }


def _import_with_progress(
    request: HttpRequest, actor: Actor, domain: Domain, form: BatchForm, rows: list[Any]
) -> HttpResponse:
    """The page up to the report, then a <progress> element every 1 % (a style sheet
    shows only the last one), then the report: a browser shows each part as it comes."""
    language = translation.get_language()
    head, tail = render_to_string(
        "panel/mailboxes/batch.html", _batch_context(domain, form, None), request
    ).split(PROGRESS_MARK, 1)
    total = len(rows)
    step = max(1, total // 100)

    def chunks() -> Iterator[bytes]:
        with translation.override(language):
            yield head.encode()
            yield b'<div class="batch-progress" role="status">'
            reports = []
            for report in import_rows(actor, domain, rows):
                reports.append(report)
                done = len(reports)
                if done % step == 0 or done == total:
                    label = _("%(done)s of %(total)s lines") % {"done": done, "total": total}
                    yield (
                        f'<p><progress value="{done}" max="{total}"></progress> {label}</p>'
                    ).encode()
            yield b"</div>"
            report_page = render_to_string(
                "panel/mailboxes/batch_report.html",
                _batch_context(domain, form, reports),
                request,
            )
            yield (report_page + tail).encode()

    return streamed_page(request, chunks())


@sensitive_post_parameters("password_1")
@domain_view
def user_edit(request: HttpRequest, actor: Actor, domain: Domain, login: str) -> HttpResponse:
    """Edit Mailbox with the manual's sections."""
    mailbox = get_mailbox(actor, login, domain)
    shown = MailboxOut.of(mailbox, with_usage=True)
    greylisting = greylist.mailbox_greylisting(actor, domain, mailbox.login)
    own = actor.owns(mailbox)
    form = MailboxForm(
        posted(request),
        initial={**MailboxForm.initial_from(shown), "greylisting": greylisting.enabled},
        own=own,
    )
    if request.method == "POST" and form.is_valid():
        changes = form.edit_changes(shown)
        send_to = form.cleaned_data["send_account_mail_to"]
        proof = proof_from(request, form.cleaned_data.get("current_password"))
        try:
            if changes:
                mailbox = mailbox_service.modify_mailbox(actor, mailbox, proof=proof, **changes)
                keep_session(request, mailbox)
            if form.cleaned_data["greylisting"] != greylisting.enabled:
                greylist.set_mailbox_greylisting(
                    actor, domain, mailbox.login, enabled=form.cleaned_data["greylisting"]
                )
            sent_to = send_to and mailbox_service.send_account_mail(actor, mailbox, send_to)
        except CourrielError as error:
            form.refuse(error)
        else:
            messages.success(request, _("Mailbox %(login)s saved.") % {"login": mailbox.login})
            if changes.get("password"):
                say_password_changed(request, own, mailbox.tokens_revoked)
            if sent_to:
                messages.success(request, account_mail_sent(sent_to))
            return redirect("user", domain=domain.name, login=mailbox.login)
    return render(
        request,
        "panel/mailboxes/edit.html",
        {
            "domain": domain,
            "form": form,
            "mailbox": shown,
            "creating": False,
            "greylisting": greylisting,
        },
    )


@require_POST
@domain_view
@sensitive_post_parameters("current_password")
def generate_password(
    request: HttpRequest, actor: Actor, domain: Domain, login: str
) -> HttpResponse:
    """The old panel's "Show.." read stored passwords back; ours can only make a new
    one and show it this once."""
    mailbox = get_mailbox(actor, login, domain)
    own = actor.owns(mailbox)
    error = ""
    if confirmed(request):
        try:
            changed = mailbox_service.change_password(
                actor, mailbox, proof=proof_from(request, request.POST.get("current_password"))
            )
        except CourrielError as refused:
            error = refused.message
        else:
            keep_session(request, mailbox)
            say_password_changed(request, own, changed.tokens_revoked)
            return show_once(
                request,
                "panel/password_once.html",
                {"domain": domain, "mailbox": mailbox, "password": changed.password},
            )
    return confirm_page(
        request,
        title=_("Generate a new password"),
        message=_(
            "The current password stops working at once: mail programs that use it "
            "must be given the new one."
        ),
        items=[mailbox.login],
        button=_("Generate and show once"),
        cancel=reverse("user", kwargs={"domain": domain.name, "login": mailbox.login}),
        ask_current_password=own,
        error=error,
    )


@require_POST
@domain_view
def delete_selected(request: HttpRequest, actor: Actor, domain: Domain) -> HttpResponse:
    """Delete Selected Users, after a confirmation that lists them."""
    logins = selected(request)
    if not logins:
        messages.error(request, _("Select the users to delete first."))
        return redirect("users", domain=domain.name)
    targets: list[Mailbox] = [get_mailbox(actor, login, domain) for login in logins]
    if not confirmed(request):
        return confirm_page(
            request,
            title=_("Delete Selected Users"),
            message=_(
                "These mailboxes and their addresses are deleted; their mail is moved aside "
                "on the server, not destroyed:"
            ),
            items=[f"{m.login} ({m.real_name})" if m.real_name else m.login for m in targets],
            fields=[("selected", m.login) for m in targets],
            button=ngettext("Delete %(count)d user", "Delete %(count)d users", len(targets))
            % {"count": len(targets)},
            cancel=reverse("users", kwargs={"domain": domain.name}),
        )
    report(
        request,
        lambda: mailbox_service.delete_mailboxes(actor, targets),
        lambda deleted: _("Deleted: %(logins)s.") % {"logins": ", ".join(deleted)},
    )
    return redirect("users", domain=domain.name)
