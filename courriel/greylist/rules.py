"""Everything that decides *whether* to greylist, read from the database at once:
static whitelists, the shipped default list, the domain and mailbox opt-outs and the
per-domain delays. The engine holds one immutable snapshot and swaps it whole when
the rules revision changes, so the hot path reads it without a lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from courriel.greylist.whitelist import Matcher, Rule, default_rules


@dataclass(frozen=True)
class Rules:
    matcher: Matcher = field(default_factory=Matcher)
    # recipient domain (A-label, domain aliases included) -> the hosted domain's name
    off_domains: dict[str, str] = field(default_factory=dict)
    # recipient address -> the mailbox login that turned greylisting off
    off_addresses: dict[str, str] = field(default_factory=dict)
    # recipient domain -> delay in seconds, where the provider overrode it
    delays: dict[str, float] = field(default_factory=dict)


def shipped_rules(with_defaults: bool) -> Rules:
    """What applies before the database could be read (or when it cannot be)."""
    return Rules(matcher=Matcher.build(default_rules() if with_defaults else []))


def load_rules(with_defaults: bool, using: str = "default") -> Rules:
    from courriel.accounts.models import Address, DomainAlias
    from courriel.greylist.models import DomainGreylisting, WhitelistEntry

    stored = [
        Rule(entry.kind, entry.value, entry.source, entry.comment)
        for entry in WhitelistEntry.objects.using(using).order_by("id")
    ]
    matcher = Matcher.build((default_rules() if with_defaults else []) + stored)

    aliases: dict[int, list[str]] = {}
    for alias in DomainAlias.objects.using(using).only("name", "domain_id"):
        aliases.setdefault(alias.domain_id, []).append(alias.name)

    off_domains: dict[str, str] = {}
    delays: dict[str, float] = {}
    for setting in DomainGreylisting.objects.using(using).select_related("domain"):
        names = [setting.domain.name, *aliases.get(setting.domain_id, [])]
        for name in names:
            if not setting.enabled:
                off_domains[name] = setting.domain.name
            if setting.delay is not None:
                delays[name] = float(setting.delay)

    off_addresses: dict[str, str] = {}
    for address in (
        Address.objects.using(using)
        .filter(mailbox__greylisting__enabled=False, enabled=True)
        .select_related("domain", "mailbox")
    ):
        assert address.mailbox is not None
        for name in (address.domain.name, *aliases.get(address.domain_id, [])):
            off_addresses[f"{address.local_part}@{name}"] = address.mailbox.login
    return Rules(matcher, off_domains, off_addresses, delays)
