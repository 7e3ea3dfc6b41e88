"""One description of each greylisting object, for the CLI's --json, the API and the
panel (the same names everywhere)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from courriel.greylist.models import Triplet, WhitelistEntry
from courriel.greylist.settings import Settings
from courriel.greylist.whitelist import Rule
from courriel.i18n import format_duration, ngettext
from courriel.i18n import gettext as _

TripletState = Literal["waiting", "trusted", "expired"]


def when(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp is not None else None


class PeriodCounts(BaseModel):
    deferred: int = 0
    passed_retry: int = 0
    passed_known: int = 0
    passed_whitelist: int = 0
    passed_auto: int = 0
    store_errors: int = 0


class StatusOut(BaseModel):
    """The provider's status page."""

    enabled: bool
    delay_seconds: int
    retry_window_seconds: int
    expiry_seconds: int
    auto_whitelist_after: int
    fail_open: bool
    ipv4_prefix: int  # client addresses are grouped by these networks
    ipv6_prefix: int
    today: PeriodCounts
    last_7_days: PeriodCounts
    total: PeriodCounts
    pending: int  # triplets waiting for their retry
    trusted: int
    auto_whitelisted: int  # client networks
    whitelist_entries: int  # the provider's own (the shipped list not counted)
    domains_off: int
    mailboxes_off: int


class TripletOut(BaseModel):
    client_network: str
    client_ip: str
    sender: str
    recipient: str
    state: TripletState
    first_seen: datetime
    last_seen: datetime
    passed_at: datetime | None
    delayed_seconds: int | None  # how long greylisting held the first message
    accept_after: datetime | None  # waiting: a retry from then on is accepted...
    retry_until: datetime | None  # ...until then
    trusted_until: datetime | None
    deferrals: int
    messages_accepted: int
    explanation: str

    @classmethod
    def of(cls, row: Triplet, settings: Settings, delay: float, now: float) -> TripletOut:
        state: TripletState
        first, last, passed = row.first_seen, row.last_seen, row.passed_at
        if passed is not None and now - last <= settings.expiry:
            state = "trusted"
            explanation = _(
                "Delayed %(delay)s by greylisting: first attempt at %(first)s, accepted at "
                "%(passed)s. Mail from this sending server and sender to this recipient is "
                "no longer delayed (as long as one message arrives before %(until)s)."
            ) % {
                "delay": format_duration(passed - first),
                "first": at(first),
                "passed": at(passed),
                "until": at(last + settings.expiry),
            }
        elif passed is None and now - first <= settings.retry_window:
            state = "waiting"
            explanation = _(
                "The first attempt at %(first)s from %(ip)s was deferred by greylisting "
                "(%(deferrals)s). The sending server's next retry after %(after)s will be "
                "accepted, if it comes before %(until)s; most servers retry every 15 to 30 "
                "minutes, so the message should arrive shortly after that."
            ) % {
                "first": at(first),
                "ip": row.client_ip,
                # English keeps its "(s)" for every count (the command line's output is
                # unchanged); the translations have real plural forms.
                "deferrals": ngettext(
                    "%(count)d time(s) so far", "%(count)d time(s) so far", row.deferrals
                )
                % {"count": row.deferrals},
                "after": at(first + delay),
                "until": at(first + settings.retry_window),
            }
        elif passed is None:
            state = "expired"
            explanation = _(
                "Deferred at %(first)s and never retried in time: the sending server gave up "
                "or is not a real mail server (typical of spam). A new message will be "
                "greylisted again."
            ) % {"first": at(first)}
        else:
            state = "expired"
            explanation = _(
                "Was trusted, but no mail came for %(expiry)s after %(last)s: the next "
                "message will be delayed again."
            ) % {"expiry": format_duration(settings.expiry), "last": at(last)}
        return cls(
            client_network=row.client_net,
            client_ip=row.client_ip,
            sender=row.sender,
            recipient=row.recipient,
            state=state,
            first_seen=when(first),  # type: ignore[arg-type]
            last_seen=when(last),  # type: ignore[arg-type]
            passed_at=when(passed),
            delayed_seconds=int(passed - first) if passed is not None else None,
            accept_after=when(first + delay) if state == "waiting" else None,
            retry_until=when(first + settings.retry_window) if state == "waiting" else None,
            trusted_until=when(last + settings.expiry) if state == "trusted" else None,
            deferrals=row.deferrals,
            messages_accepted=row.passes,
            explanation=explanation,
        )


def at(moment: float | datetime) -> str:
    """A time in a sentence: UTC, and said so, the same for every reader (the panel's
    tables show times in its own time zone, and say which)."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class LookupOut(BaseModel):
    """The answer to "why was my mail delayed, and when will it arrive?"."""

    sender: str | None
    recipient: str | None
    client_ip: str | None
    summary: str
    exemptions: list[str]  # why some of this mail is never greylisted
    triplets: list[TripletOut]


class WhitelistEntryOut(BaseModel):
    kind: str
    value: str
    comment: str
    source: str  # "default" for the shipped list
    added_on: datetime | None = None
    added_by: str = ""

    @classmethod
    def of(cls, entry: WhitelistEntry) -> WhitelistEntryOut:
        return cls(
            kind=entry.kind,
            value=entry.value,
            comment=entry.comment,
            source=entry.source,
            added_on=entry.created_at,
            added_by=entry.created_by,
        )

    @classmethod
    def of_rule(cls, rule: Rule) -> WhitelistEntryOut:
        return cls(kind=rule.kind, value=rule.value, comment=rule.comment, source=rule.source)


class ImportOut(BaseModel):
    kind: str
    source: str
    added: int
    already_present: int


class DomainGreylistingOut(BaseModel):
    domain: str
    enabled: bool
    delay_seconds: int  # effective delay for this domain
    delay_overridden: bool
    mailboxes_off: list[str]


class MailboxGreylistingOut(BaseModel):
    login: str
    domain: str
    enabled: bool  # this mailbox's own switch
    effective: bool  # false too when the whole domain is off


class PurgeOut(BaseModel):
    triplets: int
    networks: int
