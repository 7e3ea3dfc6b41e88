"""What every API module shares: the caller as an Actor, paging, error responses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Schema

from courriel.accounts.permissions import Actor
from courriel.accounts.signin import Door, Proof
from courriel.api.outputs import ErrorOut
from courriel.errors import ValidationError
from courriel.i18n import gettext as _
from courriel.paging import window

T = TypeVar("T")
MAX_LIMIT = 500

# Documented on every operation, so that clients (and schemathesis) know them.
ERRORS: dict[int, Any] = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    422: ErrorOut,
    429: ErrorOut,
}


def responses(ok: Any, status: int = 200) -> dict[int, Any]:
    return {status: ok, **ERRORS}


def actor(request: HttpRequest) -> Actor:
    return request.auth  # type: ignore[attr-defined,no-any-return]


def api_proof(request: HttpRequest, current_password: str | None) -> Proof | None:
    """The current password a client sent to confirm a change of its own credentials."""
    if not current_password:
        return None
    return Proof(current_password, request.META.get("REMOTE_ADDR", ""), Door.API)


def some_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """A PATCH body must change something."""
    if not changes:
        raise ValidationError(_("Nothing to change: send at least one field."))
    return changes


class Paging(Schema):
    limit: int = Field(50, ge=1, le=MAX_LIMIT, description="How many items (at most 500).")
    offset: int = Field(0, ge=0, le=10**9, description="How many items to skip.")


def paged(
    items: QuerySet[Any] | Sequence[Any], paging: Paging, convert: Callable[[Any], T]
) -> dict[str, Any]:
    """One page of a list and the size of the whole list (10,000 mailboxes are never
    sent in one answer)."""
    count = items.count() if isinstance(items, QuerySet) else len(items)
    return {
        "items": [convert(item) for item in window(items, paging.offset, paging.limit)],
        "count": count,
        "limit": paging.limit,
        "offset": paging.offset,
    }


# A mailbox download: documented for clients (and schemathesis) as a file.
DOWNLOAD_FORMAT = Query(
    "mbox", description="mbox (one file, every folder) or maildir (a .tar.gz of the Maildir)."
)
DOWNLOAD_DOC: dict[str, Any] = {
    "responses": {
        200: {
            "description": "The mailbox, made while it is sent.",
            "content": {
                kind: {"schema": {"type": "string", "format": "binary"}}
                for kind in ("application/mbox", "application/gzip")
            },
        }
    }
}
