"""One description of the incoming-check settings for the CLI's --json, the API and
the panel (the same names everywhere)."""

from __future__ import annotations

from pydantic import BaseModel


class DomainFilteringOut(BaseModel):
    domain: str
    spam_filtering: bool  # the domain's "Spam filtering" feature
    dmarc: str  # follow, quarantine, monitor: what DMARC failures of mail to it become
    dmarc_enforced: bool  # [auth] dmarc_enforce on this server


class MailboxSpamOut(BaseModel):
    login: str
    domain: str
    junk_score: float | None  # None: rspamd's "add header" action decides
    reject_score: float | None  # None: rspamd's "reject" action decides
    spam_filtering: bool  # the domain's feature (thresholds apply only when it is on)
