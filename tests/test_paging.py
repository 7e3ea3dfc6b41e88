"""A page read through its keys is the same page a plain slice gives, in order."""

from __future__ import annotations

import pytest

from courriel.audit.models import AuditEntry
from courriel.paging import window


@pytest.mark.django_db
def test_a_window_is_the_slice_of_the_ordered_list() -> None:
    AuditEntry.objects.bulk_create(
        AuditEntry(actor="a", role="owner", action="x", target=f"t{n % 7}") for n in range(23)
    )
    ordered = AuditEntry.objects.order_by("target", "-id")
    whole = list(ordered)
    for offset, limit in [(0, 5), (5, 5), (20, 5), (22, 50), (30, 5)]:
        assert window(ordered, offset, limit) == whole[offset : offset + limit]
    assert window(whole, 20, 5) == whole[20:25]  # a plain list too
