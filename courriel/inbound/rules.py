"""What the settings say for one recipient domain or mailbox, as the mail plane needs it:
small frozen values from the routing cache (no ORM object on the event loop, and no
query per message; a change made anywhere is seen as soon as the cache is)."""

from __future__ import annotations

from dataclasses import dataclass

from courriel.accounts.routing_cache import cache


@dataclass(frozen=True)
class DomainRules:
    spam: bool  # the domain's "Spam filtering" feature
    dmarc: str  # DomainFiltering.dmarc: follow, quarantine, monitor


@dataclass(frozen=True)
class MailboxRules:
    junk_score: float | None
    reject_score: float | None


_NO_DOMAIN = DomainRules(spam=False, dmarc="follow")
_DEFAULT_MAILBOX = MailboxRules(None, None)


def is_ours(domain: str) -> bool:
    """Whether `domain` is hosted here (a domain or a domain alias)."""
    return cache.get(("inbound.hosted", domain), lambda: _hosted(domain))


def _hosted(domain: str) -> bool:
    from courriel.accounts.resolution import hosted_domain

    return hosted_domain(domain) is not None


def domain_rules(name: str) -> DomainRules:
    return cache.get(("inbound.domain", name), lambda: _load_domain(name))


def _load_domain(name: str) -> DomainRules:
    from courriel.accounts.models import Domain
    from courriel.inbound.models import DomainFiltering

    domain = Domain.objects.filter(name=name).only("pk", "features").first()
    if domain is None:
        return _NO_DOMAIN
    setting = DomainFiltering.objects.filter(domain_id=domain.pk).only("dmarc").first()
    return DomainRules("spam" in (domain.features or []), setting.dmarc if setting else "follow")


def mailbox_rules(mailbox_id: int) -> MailboxRules:
    return cache.get(("inbound.mailbox", mailbox_id), lambda: _load_mailbox(mailbox_id))


def _load_mailbox(mailbox_id: int) -> MailboxRules:
    from courriel.inbound.models import MailboxSpam

    setting = MailboxSpam.objects.filter(mailbox_id=mailbox_id).first()
    if setting is None:
        return _DEFAULT_MAILBOX
    return MailboxRules(setting.junk_score, setting.reject_score)
