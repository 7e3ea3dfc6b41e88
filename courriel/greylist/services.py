"""Greylisting use cases for the panel, the CLI, the API and the metrics.

Permissions: the status, the triplet lists, the whitelists and purges are the
provider's. A domain owner may turn greylisting off (or on) for their own domains
and mailboxes, and ask why mail to them was delayed; another customer's domain is
simply not found. A mailbox user may ask about mail to their own addresses.
Every change is audited and bumps the rules revision, so every running engine (on
every hosting server) applies it within `[greylist] reload_interval`.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, Sum

from courriel.accounts.models import Address, Domain, DomainAlias, Mailbox
from courriel.accounts.permissions import (
    Actor,
    get_domain,
    get_mailbox,
    require_domain_manager,
    require_mailbox_change,
    require_provider,
    visible_domains,
)
from courriel.audit.log import record
from courriel.errors import ConflictError, NotFoundError, ValidationError
from courriel.greylist import engine as engine_module
from courriel.greylist.models import (
    AutoWhitelist,
    DailyCount,
    DomainGreylisting,
    MailboxGreylisting,
    Triplet,
    WhitelistEntry,
)
from courriel.greylist.normalise import (
    client_network,
    normalise_recipient,
    normalise_sender,
)
from courriel.greylist.rules import load_rules
from courriel.greylist.schemas import (
    DomainGreylistingOut,
    ImportOut,
    LookupOut,
    MailboxGreylistingOut,
    PeriodCounts,
    PurgeOut,
    StatusOut,
    TripletOut,
    WhitelistEntryOut,
    at,
)
from courriel.greylist.settings import Settings
from courriel.greylist.store import COUNTERS, Store, bump_revision
from courriel.greylist.whitelist import (
    check_kind,
    clean_value,
    default_rules,
    kind_name,
    parse_postgrey,
)
from courriel.i18n import gettext as _
from courriel.i18n import ngettext
from courriel.metrics.figures import Metric
from courriel.units import parse_duration

MAX_RESULTS = 500


def _now(now: float | None) -> float:
    import time

    return time.time() if now is None else now


def _settings() -> Settings:
    return Settings.from_config()


def _changed() -> None:
    """Rules changed: every engine notices the revision; this process's at once."""
    bump_revision()
    running = engine_module._engine
    if running is not None:
        transaction.on_commit(lambda: running.reload(force=True))


# -- status and figures ----------------------------------------------------------------------
def _period(since: date | None = None) -> PeriodCounts:
    rows = DailyCount.objects.all()
    if since is not None:
        rows = rows.filter(day__gte=since)
    sums = rows.aggregate(**{name: Sum(name) for name in COUNTERS})
    return PeriodCounts(**{name: int(value or 0) for name, value in sums.items()})


def _pending(settings: Settings, now: float) -> Q:
    return Q(passed_at__isnull=True, first_seen__gte=now - settings.retry_window)


def _trusted(settings: Settings, now: float) -> Q:
    return Q(passed_at__isnull=False, last_seen__gte=now - settings.expiry)


def _auto_whitelisted(settings: Settings, now: float) -> int:
    if not settings.auto_whitelist_after:
        return 0
    return AutoWhitelist.objects.filter(
        passes__gte=settings.auto_whitelist_after, last_seen__gte=now - settings.expiry
    ).count()


def status(actor: Actor, *, now: float | None = None) -> StatusOut:
    require_provider(actor, _("see the greylisting status"))
    settings, now = _settings(), _now(now)
    today = date.fromtimestamp(now)
    return StatusOut(
        enabled=settings.enabled,
        delay_seconds=int(settings.delay),
        retry_window_seconds=int(settings.retry_window),
        expiry_seconds=int(settings.expiry),
        auto_whitelist_after=settings.auto_whitelist_after,
        fail_open=settings.fail_open,
        ipv4_prefix=settings.ipv4_prefix,
        ipv6_prefix=settings.ipv6_prefix,
        today=_period(today),
        last_7_days=_period(today - timedelta(days=6)),
        total=_period(),
        pending=Triplet.objects.filter(_pending(settings, now)).count(),
        trusted=Triplet.objects.filter(_trusted(settings, now)).count(),
        auto_whitelisted=_auto_whitelisted(settings, now),
        whitelist_entries=WhitelistEntry.objects.count(),
        domains_off=DomainGreylisting.objects.filter(enabled=False).count(),
        mailboxes_off=MailboxGreylisting.objects.filter(enabled=False).count(),
    )


def metrics(*, now: float | None = None) -> list[Metric]:
    """Figures for the metrics endpoint (no actor: the exporter is the provider's)."""
    settings, now = _settings(), _now(now)
    figures: list[Metric] = []
    totals = DailyCount.objects.values("host").annotate(**{name: Sum(name) for name in COUNTERS})
    for row in totals:
        for name in COUNTERS:
            if name == "store_errors":
                continue
            figures.append(
                Metric(
                    name="courriel_greylist_decisions_total",
                    help="Greylisting decisions by result, per hosting server.",
                    kind="counter",
                    value=float(row[name] or 0),
                    labels={"host": row["host"], "result": name},
                )
            )
        figures.append(
            Metric(
                name="courriel_greylist_store_errors_total",
                help="Decisions taken while the greylisting store could not be read.",
                kind="counter",
                value=float(row["store_errors"] or 0),
                labels={"host": row["host"]},
            )
        )
    for state, query in (("pending", _pending), ("trusted", _trusted)):
        figures.append(
            Metric(
                name="courriel_greylist_triplets",
                help="Triplets in the store: waiting for a retry, or trusted.",
                kind="gauge",
                value=float(Triplet.objects.filter(query(settings, now)).count()),
                labels={"state": state},
            )
        )
    figures.append(
        Metric(
            name="courriel_greylist_auto_whitelisted_networks",
            help="Client networks that passed greylisting often enough to skip it.",
            kind="gauge",
            value=float(_auto_whitelisted(settings, now)),
        )
    )
    figures.append(
        Metric(
            name="courriel_greylist_whitelist_entries",
            help="Static whitelist entries added by the provider.",
            kind="gauge",
            value=float(WhitelistEntry.objects.count()),
        )
    )
    running = engine_module._engine
    if running is not None:
        for name, value in running.memory_figures().items():
            figures.append(
                Metric(
                    name=f"courriel_greylist_{name}",
                    help="This process's greylisting engine.",
                    kind="gauge",
                    value=float(value),
                )
            )
    return figures


# -- triplets --------------------------------------------------------------------------------
def _delay_for(recipient: str, settings: Settings, delays: dict[str, float]) -> float:
    return delays.get(recipient.rpartition("@")[2], settings.delay)


def list_triplets(
    actor: Actor, *, state: str = "all", limit: int = 50, now: float | None = None
) -> list[TripletOut]:
    """The most recently seen triplets (provider)."""
    require_provider(actor, _("list greylisted triplets"))
    settings, now = _settings(), _now(now)
    rows = Triplet.objects.order_by("-last_seen")
    if state == "waiting":
        rows = rows.filter(_pending(settings, now))
    elif state == "trusted":
        rows = rows.filter(_trusted(settings, now))
    elif state != "all":
        raise ValidationError(
            _("Unknown state %(state)s: use waiting, trusted or all.") % {"state": repr(state)},
            field="state",
        )
    delays = load_rules(False).delays
    return [
        TripletOut.of(row, settings, _delay_for(row.recipient, settings, delays), now)
        for row in rows[: max(1, min(limit, MAX_RESULTS))]
    ]


def _recipient_scope(actor: Actor) -> Q | None:
    """Which recipients the actor may ask about (None: all of them)."""
    if actor.is_provider:
        return None
    if actor.role == "owner":
        domains = list(visible_domains(actor))
        names = [d.name for d in domains] + list(
            DomainAlias.objects.filter(domain__in=domains).values_list("name", flat=True)
        )
    else:
        names = []
        addresses = Address.objects.filter(mailbox_id=actor.mailbox_id).select_related("domain")
        scope = Q(pk__in=[])
        for address in addresses:
            aliases = DomainAlias.objects.filter(domain=address.domain).values_list(
                "name", flat=True
            )
            for name in (address.domain.name, *aliases):
                scope |= Q(recipient=f"{address.local_part}@{name}")
        return scope
    scope = Q(pk__in=[])
    for name in names:
        scope |= Q(recipient__endswith=f"@{name}")
    return scope


def lookup(
    actor: Actor,
    *,
    sender: str | None = None,
    recipient: str | None = None,
    client_ip: str | None = None,
    now: float | None = None,
    limit: int = 50,
) -> LookupOut:
    """Why was mail delayed, and when will it arrive? By sender, recipient and/or IP.

    A recipient without `@` (`monsite.be`) means every address of that domain.
    """
    if not (sender or recipient or client_ip):
        raise ValidationError(_("Give a sender, a recipient or a client IP address to look for."))
    settings, now = _settings(), _now(now)
    rules = load_rules(settings.default_whitelist)
    rows = Triplet.objects.order_by("-last_seen")
    exemptions: list[str] = []
    if sender:
        rows = rows.filter(sender=normalise_sender(sender))
        rule = rules.matcher.sender(sender.strip().strip("<>").lower())
        if rule is not None:
            exemptions.append(
                _("Mail from %(origin)s is never greylisted: %(rule)s.")
                % {"origin": sender, "rule": rule.describe(translated=True)}
            )
    if recipient:
        if "@" in recipient:
            wanted = normalise_recipient(recipient)
            rows = rows.filter(recipient=wanted)
            domain = wanted.rpartition("@")[2]
            if wanted in rules.off_addresses:
                exemptions.append(
                    _(
                        "Greylisting is off for mailbox %(login)s: mail to %(address)s is never "
                        "delayed by it."
                    )
                    % {"login": rules.off_addresses[wanted], "address": wanted}
                )
            rule = rules.matcher.recipient(wanted)
            if rule is not None:
                exemptions.append(
                    _("Mail to %(recipient)s is never greylisted: %(rule)s.")
                    % {"recipient": wanted, "rule": rule.describe(translated=True)}
                )
        else:
            domain = recipient.strip().lower().strip(".")
            rows = rows.filter(recipient__endswith=f"@{domain}")
        if domain in rules.off_domains:
            exemptions.append(
                _("Greylisting is off for %(domain)s: its mail is never delayed.")
                % {"domain": rules.off_domains[domain]}
            )
    if client_ip:
        try:
            network = client_network(client_ip, settings.ipv4_prefix, settings.ipv6_prefix)
        except ValueError:
            raise ValidationError(
                _("%(value)s is not an IP address (e.g. 192.0.2.7).") % {"value": repr(client_ip)},
                field="client_ip",
            ) from None
        rows = rows.filter(client_net=network)
        rule = rules.matcher.client(client_ip, None)
        if rule is not None:
            exemptions.append(
                _("Mail from %(origin)s is never greylisted: %(rule)s.")
                % {"origin": client_ip, "rule": rule.describe(translated=True)}
            )
        elif settings.auto_whitelist_after and AutoWhitelist.objects.filter(
            network=network,
            passes__gte=settings.auto_whitelist_after,
            last_seen__gte=now - settings.expiry,
        ):
            exemptions.append(
                ngettext(
                    "The sending network %(network)s is auto-whitelisted (it passed "
                    "greylisting %(count)d time): its mail is no longer delayed.",
                    "The sending network %(network)s is auto-whitelisted (it passed "
                    "greylisting %(count)d times): its mail is no longer delayed.",
                    settings.auto_whitelist_after,
                )
                % {"network": network, "count": settings.auto_whitelist_after}
            )
    scope = _recipient_scope(actor)
    if scope is not None:
        rows = rows.filter(scope)
    found = [
        TripletOut.of(row, settings, _delay_for(row.recipient, settings, rules.delays), now)
        for row in rows[: max(1, min(limit, MAX_RESULTS))]
    ]
    return LookupOut(
        sender=sender,
        recipient=recipient,
        client_ip=client_ip,
        summary=_summary(found, exemptions),
        exemptions=exemptions,
        triplets=found,
    )


def _summary(found: list[TripletOut], exemptions: list[str]) -> str:
    waiting = [t for t in found if t.state == "waiting"]
    if waiting:
        first = min(waiting, key=lambda t: t.accept_after or t.first_seen)
        # English keeps its "(s)" for every count (the command line's output is
        # unchanged); the translations have real plural forms.
        return ngettext(
            "%(count)d message(s) are waiting for the sending server to retry; a retry after "
            "%(after)s will be accepted.",
            "%(count)d message(s) are waiting for the sending server to retry; a retry after "
            "%(after)s will be accepted.",
            len(waiting),
        ) % {"count": len(waiting), "after": at(first.accept_after or first.first_seen)}
    trusted = [t for t in found if t.state == "trusted"]
    if trusted:
        return ngettext(
            "%(count)d sending path(s) passed greylisting and are trusted: their mail is no "
            "longer delayed.",
            "%(count)d sending path(s) passed greylisting and are trusted: their mail is no "
            "longer delayed.",
            len(trusted),
        ) % {"count": len(trusted)}
    if exemptions:
        return _("This mail is not greylisted.")
    if found:
        return _("Greylisting saw this mail, but no retry came in time (or the trust expired).")
    return _(
        "Greylisting has no record of this mail: it was not delayed by greylisting "
        "(check the sender's address and the mail log)."
    )


def purge(actor: Actor, *, now: float | None = None, everything: bool = False) -> PurgeOut:
    """Forget expired entries now (the engine does it on a schedule), or every triplet
    and auto-whitelisted network (`everything`: all mail is greylisted afresh)."""
    require_provider(actor, _("purge greylisting data"))
    settings, now = _settings(), _now(now)
    with transaction.atomic():
        if everything:
            triplets = Triplet.objects.all().delete()[0]
            networks = AutoWhitelist.objects.all().delete()[0]
        else:
            triplets, networks = Store().purge(now, settings.retry_window, settings.expiry)
        record(
            actor,
            "greylist.purge",
            "everything" if everything else "expired",
            triplets=triplets,
            networks=networks,
        )
    return PurgeOut(triplets=triplets, networks=networks)


# -- whitelists ------------------------------------------------------------------------------
def list_whitelist(
    actor: Actor, *, kind: str | None = None, include_default: bool = True
) -> list[WhitelistEntryOut]:
    require_provider(actor, _("see the greylisting whitelists"))
    if kind is not None:
        check_kind(kind)
    entries: list[WhitelistEntryOut] = []
    if include_default and _settings().default_whitelist:
        entries += [
            WhitelistEntryOut.of_rule(rule)
            for rule in default_rules()
            if kind is None or rule.kind == kind
        ]
    stored = WhitelistEntry.objects.all()
    if kind is not None:
        stored = stored.filter(kind=kind)
    return entries + [WhitelistEntryOut.of(entry) for entry in stored]


@transaction.atomic
def add_whitelist(actor: Actor, kind: str, value: str, comment: str = "") -> WhitelistEntryOut:
    require_provider(actor, _("change the greylisting whitelists"))
    clean = clean_value(kind, value)
    if WhitelistEntry.objects.filter(kind=kind, value=clean).exists():
        raise ConflictError(
            _("%(value)s is already in the %(kind)s whitelist.")
            % {"value": clean, "kind": kind_name(kind)},
            field="value",
        )
    entry = WhitelistEntry.objects.create(
        kind=kind,
        value=clean,
        comment=comment.strip()[:300],
        source=actor.name,
        created_by=actor.name,
    )
    # The entry alone is the target: it may be as long as the audit log's column.
    record(actor, "greylist.whitelist.add", clean, kind=kind, comment=entry.comment)
    _changed()
    return WhitelistEntryOut.of(entry)


@transaction.atomic
def remove_whitelist(actor: Actor, kind: str, value: str) -> None:
    require_provider(actor, _("change the greylisting whitelists"))
    clean = clean_value(kind, value)
    deleted = WhitelistEntry.objects.filter(kind=kind, value=clean).delete()[0]
    if not deleted:
        if any(r.kind == kind and r.value == clean for r in default_rules()):
            raise ValidationError(
                _(
                    "%(value)s is in the shipped default list, which cannot be edited: turn it "
                    "off with [greylist] default_whitelist = false and add the entries you want."
                )
                % {"value": clean}
            )
        raise NotFoundError(
            _(
                "%(value)s is not in the %(kind)s whitelist. "
                "`courriel greylist whitelist list` shows the entries."
            )
            % {"value": clean, "kind": kind_name(kind)}
        )
    record(actor, "greylist.whitelist.remove", clean, kind=kind)
    _changed()


@transaction.atomic
def import_whitelist(actor: Actor, kind: str, text: str, source: str) -> ImportOut:
    """Import a postgrey `whitelist_clients` (kind client) or `whitelist_recipients`
    (kind recipient) file. Every line is checked first: nothing is imported if one
    is not valid."""
    require_provider(actor, _("change the greylisting whitelists"))
    check_kind(kind)
    label = f"import:{source}"[:150]
    rules, errors = parse_postgrey(text, kind, label)
    if errors:
        shown = "; ".join(errors[:10]) + ("; ..." if len(errors) > 10 else "")
        raise ValidationError(
            ngettext(
                "Nothing imported: %(count)d invalid line(s): %(lines)s",
                "Nothing imported: %(count)d invalid line(s): %(lines)s",
                len(errors),
            )
            % {"count": len(errors), "lines": shown}
        )
    existing = set(WhitelistEntry.objects.filter(kind=kind).values_list("value", flat=True))
    fresh: dict[str, WhitelistEntry] = {}
    for rule in rules:
        if rule.value not in existing and rule.value not in fresh:
            fresh[rule.value] = WhitelistEntry(
                kind=kind,
                value=rule.value,
                comment=rule.comment,
                source=label,
                created_by=actor.name,
            )
    WhitelistEntry.objects.bulk_create(fresh.values())
    record(actor, "greylist.whitelist.import", source[:150], kind=kind, added=len(fresh))
    _changed()
    return ImportOut(
        kind=kind, source=source, added=len(fresh), already_present=len(rules) - len(fresh)
    )


# -- per-domain and per-mailbox switches -----------------------------------------------------
def _domain_out(domain: Domain, settings: Settings) -> DomainGreylistingOut:
    setting = DomainGreylisting.objects.filter(domain=domain).first()
    off = MailboxGreylisting.objects.filter(mailbox__domain=domain, enabled=False)
    return DomainGreylistingOut(
        domain=domain.name,
        enabled=setting.enabled if setting else True,
        delay_seconds=int(
            setting.delay if setting and setting.delay is not None else settings.delay
        ),
        delay_overridden=bool(setting and setting.delay is not None),
        mailboxes_off=sorted(off.values_list("mailbox__login", flat=True)),
    )


def domain_greylisting(actor: Actor, domain_name: str | Domain) -> DomainGreylistingOut:
    domain = get_domain(actor, domain_name)
    require_domain_manager(actor, domain)
    return _domain_out(domain, _settings())


_KEEP: Any = object()


@transaction.atomic
def set_domain_greylisting(
    actor: Actor,
    domain_name: str | Domain,
    *,
    enabled: bool | None = None,
    delay: str | int | None = _KEEP,
) -> DomainGreylistingOut:
    """Turn greylisting on/off for a domain (its owner or the provider); override its
    delay (provider only: "5m", seconds, or None for the server's default)."""
    domain = get_domain(actor, domain_name)
    require_domain_manager(actor, domain)
    settings = _settings()
    setting = DomainGreylisting.objects.select_for_update().get_or_create(domain=domain)[0]
    changes: dict[str, object] = {}
    if enabled is not None:
        setting.enabled = changes["enabled"] = bool(enabled)
    if delay is not _KEEP:
        require_provider(actor, _("change a domain's delay"))
        seconds = None if delay is None else int(_seconds(delay))
        if seconds is not None and not 0 <= seconds < settings.retry_window:
            raise ValidationError(
                _("The delay must be between 0 and the retry window (%(seconds)d seconds).")
                % {"seconds": int(settings.retry_window)},
                field="delay",
            )
        setting.delay = changes["delay"] = seconds
    setting.changed_by = actor.name
    setting.save()
    record(actor, "greylist.domain", domain.name, domain=domain.name, **changes)
    _changed()
    return _domain_out(domain, settings)


def _seconds(value: str | int) -> float:
    if isinstance(value, int):
        return float(value)
    return parse_duration(value, default_unit="s").total_seconds()


def _mailbox(actor: Actor, domain_name: str | Domain, login: str) -> Mailbox:
    domain = get_domain(actor, domain_name) if actor.role != "mailbox" else None
    return get_mailbox(actor, login, domain)


def _mailbox_out(mailbox: Mailbox) -> MailboxGreylistingOut:
    own = MailboxGreylisting.objects.filter(mailbox=mailbox).first()
    domain_on = not DomainGreylisting.objects.filter(domain=mailbox.domain, enabled=False).exists()
    enabled = own.enabled if own else True
    return MailboxGreylistingOut(
        login=mailbox.login,
        domain=mailbox.domain.name,
        enabled=enabled,
        effective=enabled and domain_on,
    )


def mailbox_greylisting(
    actor: Actor, domain_name: str | Domain, login: str
) -> MailboxGreylistingOut:
    return _mailbox_out(_mailbox(actor, domain_name, login))


@transaction.atomic
def set_mailbox_greylisting(
    actor: Actor, domain_name: str | Domain, login: str, *, enabled: bool
) -> MailboxGreylistingOut:
    """Turn greylisting on/off for one mailbox (its domain's owner or the provider)."""
    mailbox = _mailbox(actor, domain_name, login)
    require_mailbox_change(actor, mailbox, {"greylisting"})
    setting = MailboxGreylisting.objects.select_for_update().get_or_create(mailbox=mailbox)[0]
    setting.enabled = bool(enabled)
    setting.changed_by = actor.name
    setting.save()
    record(actor, "greylist.mailbox", mailbox.login, domain=mailbox.domain.name, enabled=enabled)
    _changed()
    return _mailbox_out(mailbox)
