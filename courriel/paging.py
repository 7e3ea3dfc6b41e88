"""One page of a long list, for the panel and the API alike.

A plain `LIMIT 50 OFFSET 9950` makes the database build 10,000 whole rows (with their
joined domain) only to skip them. Reading the page's primary keys first skips over
the index alone; the full rows are then read for those 50 keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet


def window(items: QuerySet[Any] | Sequence[Any], offset: int, limit: int) -> list[Any]:
    if not isinstance(items, QuerySet):
        return list(items[offset : offset + limit])
    if offset == 0:  # the first page: nothing to skip
        return list(items[:limit])
    keys = list(items.values_list("pk", flat=True)[offset : offset + limit])
    return list(items.filter(pk__in=keys))
