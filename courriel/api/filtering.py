"""Incoming-check settings over the API (tag `filtering`): how DMARC failures of mail
to a domain are treated (the provider changes it), and a mailbox's spam thresholds
(its domain's owner or the provider). The services are `courriel.inbound.services`."""

from __future__ import annotations

from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Router
from pydantic import Field

from courriel.api.common import actor, responses
from courriel.api.inputs import In
from courriel.inbound import services
from courriel.inbound.schemas import DomainFilteringOut, MailboxSpamOut

router = Router(tags=["filtering"])
Score = Annotated[float, Field(ge=-1000, le=1000)]


class DomainFilteringPatch(In):
    dmarc: Literal["follow", "quarantine", "monitor"] = Field(
        description="DMARC failures of mail to this domain: follow the sender's policy "
        "(refuse or Junk), quarantine (Junk, never refuse) or monitor (header only)."
    )


class MailboxSpamPatch(In):
    junk_score: Score | None = Field(
        None, description="From this score, mail goes to Junk; null: rspamd's action."
    )
    reject_score: Score | None = Field(
        None, description="From this score, mail is refused; null: rspamd's action."
    )


@router.get("/domains/{name}/filtering", response=responses(DomainFilteringOut))
def domain_filtering(request: HttpRequest, name: str) -> DomainFilteringOut:
    return services.domain_filtering(actor(request), name)


@router.patch("/domains/{name}/filtering", response=responses(DomainFilteringOut))
def set_domain_filtering(
    request: HttpRequest, name: str, body: DomainFilteringPatch
) -> DomainFilteringOut:
    return services.set_domain_dmarc(actor(request), name, body.dmarc)


@router.get("/domains/{name}/mailboxes/{login}/spam", response=responses(MailboxSpamOut))
def mailbox_spam(request: HttpRequest, name: str, login: str) -> MailboxSpamOut:
    return services.mailbox_spam(actor(request), name, login)


@router.patch("/domains/{name}/mailboxes/{login}/spam", response=responses(MailboxSpamOut))
def set_mailbox_spam(
    request: HttpRequest, name: str, login: str, body: MailboxSpamPatch
) -> MailboxSpamOut:
    """Absent fields are left as they are; null goes back to rspamd's own action."""
    return services.set_mailbox_spam(
        actor(request), name, login, **body.model_dump(exclude_unset=True)
    )
