"""The outbound queue as the provider looks after it, from the panel and the command
line alike: what waits, one entry with its message headers, retry now, delete.

Queued mail belongs to every customer (forwards, auto-replies, their users' sent
mail), so only the provider sees it; every change is in the audit log. The work itself
is `courriel.outbound.admin`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from courriel.accounts.permissions import Actor, require_provider
from courriel.delivery.message import header_block
from courriel.i18n import gettext as _
from courriel.outbound import admin
from courriel.outbound.spool import Entry, get_spool

HEADER_BYTES = 64 * 1024  # enough for any sane header block; the body is never read


@dataclass(frozen=True)
class ShownEntry:
    entry: Entry
    headers: str  # the message's header block, as text


def list_entries(actor: Actor) -> list[Entry]:
    """Every entry, oldest first."""
    require_provider(actor, _("see the outbound queue"))
    return sorted(get_spool().entries(), key=lambda entry: entry.created)


def show_entry(actor: Actor, entry_id: str) -> ShownEntry:
    require_provider(actor, _("see the outbound queue"))
    entry = admin.get_entry(entry_id)
    try:
        with open(get_spool().message_path(entry.id), "rb") as handle:
            head = handle.read(HEADER_BYTES)
    except OSError:
        head = b""  # delivered or deleted meanwhile: the envelope still says what it was
    return ShownEntry(entry, header_block(head).decode("utf-8", "replace"))


def retry_entries(actor: Actor, entry_ids: list[str] | None = None) -> int:
    """Make entries due now (every one when none is named) and wake the running
    server; returns how many."""
    from courriel.audit.log import record  # a database model: `queue list` needs none

    require_provider(actor, _("retry queued mail"))
    count = admin.retry(entry_ids)
    record(actor, "queue.retry", ", ".join(entry_ids) if entry_ids else "all", entries=count)
    return count


def delete_entries(actor: Actor, entry_ids: list[str]) -> int:
    """Delete entries without delivering them (no bounce is sent); returns how many."""
    from courriel.audit.log import record

    require_provider(actor, _("delete queued mail"))
    count = admin.delete(entry_ids)
    record(actor, "queue.delete", ", ".join(entry_ids), entries=count)
    return count
