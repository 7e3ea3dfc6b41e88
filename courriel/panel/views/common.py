"""Pieces every group of screens uses: paging of long lists, the confirmation step of
destructive actions, and the page that shows a secret once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from courriel.accounts.models import Mailbox
from courriel.accounts.signin import Door, Proof
from courriel.errors import CourrielError
from courriel.paging import window

T = TypeVar("T")

PER_PAGE = 50


def page_of(
    request: HttpRequest, items: QuerySet[Any] | Sequence[Any], per_page: int = PER_PAGE
) -> Page:
    """One page of a list (10,000 mailboxes are shown 50 at a time); a bad page
    number gives the nearest page rather than an error."""
    return WindowPaginator(items, per_page).get_page(request.GET.get("page"))


class WindowPaginator(Paginator):
    """Django's paginator, reading a page through `courriel.paging.window`."""

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        return self._get_page(window(self.object_list, bottom, top - bottom), number, self)


def confirmed(request: HttpRequest) -> bool:
    return request.method == "POST" and request.POST.get("confirm") == "yes"


def confirm_page(
    request: HttpRequest,
    *,
    title: str,
    message: str,
    items: Iterable[str] = (),
    fields: Iterable[tuple[str, str]] = (),
    button: str,
    cancel: str,
    ask_current_password: bool = False,
    error: str = "",
) -> HttpResponse:
    """Delete Selected Users and friends ask once more, listing what goes (and, for a
    change of one's own credentials, the current password)."""
    return render(
        request,
        "panel/confirm.html",
        {
            "title": title,
            "message": message,
            "items": list(items),
            "fields": list(fields),
            "button": button,
            "cancel": cancel,
            "ask_current_password": ask_current_password,
            "error": error,
        },
    )


def show_once(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """A page with a secret (generated password, API token): never cached, never
    shown again."""
    response = render(request, template, context)
    add_never_cache_headers(response)
    return response


def selected(request: HttpRequest, name: str = "selected", most: int = 1000) -> list[str]:
    """The ticked boxes of a list, without blanks or repeats."""
    seen: list[str] = []
    for value in request.POST.getlist(name)[:most]:
        value = value.strip()
        if value and value not in seen:
            seen.append(value)
    return seen


def keep_session(request: HttpRequest, mailbox: Mailbox) -> None:
    """A password change ends the mailbox's panel sessions (its hash signs them), except
    the one that made the change when it is the mailbox's own."""
    user = getattr(request, "user", None)
    if isinstance(user, Mailbox) and user.pk == mailbox.pk:
        update_session_auth_hash(request, Mailbox.objects.get(pk=mailbox.pk))


def proof_from(request: HttpRequest, password: str | None) -> Proof | None:
    """The current password typed in a form, to confirm a change of one's own
    credentials (the services ask for it)."""
    if not password:
        return None
    return Proof(password, request.META.get("REMOTE_ADDR", ""), Door.PANEL)


def say_password_changed(request: HttpRequest, own: bool, tokens_revoked: int) -> None:
    """What a password change did besides the password: the other panel sessions ended
    and the API tokens were revoked."""
    ended = _("Your other sessions have ended.") if own else _("Its panel sessions have ended.")
    if tokens_revoked:
        revoked = ngettext(
            "%(count)d API token was revoked.", "%(count)d API tokens were revoked.", tokens_revoked
        ) % {"count": tokens_revoked}
        ended = f"{ended} {revoked}"
    messages.info(request, ended)


def posted(request: HttpRequest) -> QueryDict | None:
    """The submitted data of a POST, even when empty (a form whose checkboxes are all
    unticked sends nothing, and must still be checked), else None (an unbound form)."""
    return request.POST if request.method == "POST" else None


def report(request: HttpRequest, action: Callable[[], T], done: Callable[[T], str]) -> T | None:
    """Run a confirmed change: a refusal from the services becomes an error message on
    the next page, success a confirmation saying what was done."""
    try:
        result = action()
    except CourrielError as error:
        messages.error(request, error.message)
        return None
    messages.success(request, done(result))
    return result
