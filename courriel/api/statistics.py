"""Statistics (the panel's Statistics pages as figures): the provider's over every
domain or one; a domain owner's over their domains or one of them."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router

from courriel.api.common import actor, responses
from courriel.stats.figures import statistics as figures_for
from courriel.stats.schemas import StatisticsOut

router = Router(tags=["statistics"])


@router.get("/statistics", response=responses(StatisticsOut))
def statistics(request: HttpRequest, domain: str = Query("", max_length=253)) -> StatisticsOut:
    """Messages received, delivered, forwarded, refused (by reason), greylisted and
    sent per hour over 48 hours and per day over 90 days; disk use per domain (per
    mailbox when `domain` is given) over 90 days; the outbound queue (provider)."""
    return StatisticsOut.of(figures_for(actor(request), domain.strip() or None))
