"""Static whitelists: who is never greylisted, and the postgrey file formats.

Entries are compiled into matchers that answer in constant time for the common
kinds (a set look-up per network prefix length, per host-name suffix, per domain
suffix), so that thousands of imported entries cost the hot path nothing.

Formats (the same as postgrey's `whitelist_clients` and `whitelist_recipients`, so
a provider can move its files over unchanged):

- client: an IPv4 or IPv6 address or network (`192.0.2.7`, `192.0.2.0/24`,
  `2001:db8::/48`), a partial IPv4 address (`192.0.2` is a /24, `10.1` a /16), a
  host name that matches itself and its subdomains (`google.com` matches
  `mail-ed1-f41.google.com`), or `/regex/` matched against the host name. Host names
  are only trusted when forward-confirmed (reverse DNS that resolves back).
- sender: a domain (and its subdomains), an address, or `/regex/`.
- recipient: `user@domain` (also `user+tag@domain`), `user@` (in any domain), a
  domain (and its subdomains), or `/regex/`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources

from django.utils.translation import gettext_noop

from courriel.errors import ValidationError
from courriel.greylist.normalise import parse_ip
from courriel.i18n import gettext as _
from courriel.i18n import pgettext

CLIENT = "client"
SENDER = "sender"
RECIPIENT = "recipient"
KINDS = (CLIENT, SENDER, RECIPIENT)

_PARTIAL_V4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){1,2}$")
_HOST = re.compile(r"^[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?$")
_ADDRESS_CHARS = re.compile(r"^[^\s@]*@?[^\s@]*$")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Marked for the catalogue but kept English for the engine, whose reasons go to its log
# whatever language a process runs in; `Rule.describe(translated=True)` translates them.
_ENTRY = gettext_noop("%(kind)s whitelist entry %(value)s")
_DEFAULT_ENTRY = gettext_noop("%(kind)s whitelist entry %(value)s (shipped default list)")


def kind_name(kind: str) -> str:
    """The kind as the reader's language names its list ("client" whitelist, liste
    blanche des "serveurs expéditeurs")."""
    if kind == CLIENT:
        return pgettext("whitelist kind", "client")
    if kind == SENDER:
        return pgettext("whitelist kind", "sender")
    if kind == RECIPIENT:
        return pgettext("whitelist kind", "recipient")
    return kind


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValidationError(
            _("Unknown whitelist kind %(kind)s: use %(kinds)s.")
            % {"kind": repr(kind), "kinds": ", ".join(KINDS)},
            field="kind",
        )


@dataclass(frozen=True)
class Rule:
    """A whitelist entry as the engine and the panel see it."""

    kind: str
    value: str
    source: str = ""  # "default", "cli:root", "import:whitelist_clients"...
    comment: str = ""

    def describe(self, translated: bool = False) -> str:
        """The entry in a sentence ("client whitelist entry 192.0.2.0/24"); `translated`:
        in the reader's language (the panel and the API), not the engine's English."""
        text = _DEFAULT_ENTRY if self.source == "default" else _ENTRY
        if not translated:
            return text % {"kind": self.kind, "value": self.value}
        return _(text) % {"kind": kind_name(self.kind), "value": self.value}


def _regex(value: str) -> re.Pattern[str] | None:
    if len(value) > 2 and value.startswith("/") and value.endswith("/"):
        try:
            return re.compile(value[1:-1], re.IGNORECASE)
        except re.error as error:
            raise ValidationError(
                _("%(value)s is not a valid regular expression: %(error)s.")
                % {"value": repr(value), "error": error}
            ) from None
    return None


def _network(value: str) -> IPNetwork | None:
    if _PARTIAL_V4.match(value):
        parts = value.split(".")
        value = ".".join(parts + ["0"] * (4 - len(parts))) + f"/{8 * len(parts)}"
    if not (":" in value or value[:1].isdigit()):
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        if ":" in value or "/" in value:
            raise ValidationError(
                _("%(value)s is not a valid IP address or network (e.g. 192.0.2.0/24).")
                % {"value": repr(value)}
            ) from None
        return None  # a host name that starts with a digit, like 163.com


def clean_value(kind: str, value: str) -> str:
    """Validate one entry and return its canonical form (raises ValidationError)."""
    check_kind(kind)
    text = (value or "").strip()
    if not text or len(text) > 300 or any(c.isspace() for c in text):
        raise ValidationError(
            _(
                "%(value)s is not a valid %(kind)s whitelist entry: "
                "one word, at most 300 characters."
            )
            % {"value": repr(value), "kind": kind_name(kind)},
            field="value",
        )
    if _regex(text) is not None:
        return text
    text = text.lower()
    if kind == CLIENT:
        network = _network(text)
        if network is not None:
            return (
                str(network)
                if network.prefixlen < network.max_prefixlen
                else str(network.network_address)
            )
        host = text.strip(".")
        if not _HOST.match(host) or ".." in host:
            raise ValidationError(
                _("%(value)s is not an IP address, network, host name or /regex/.")
                % {"value": repr(value)},
                field="value",
            )
        return host
    if not _ADDRESS_CHARS.match(text) or text == "@":
        raise ValidationError(
            _("%(value)s is not a valid %(kind)s entry: an address, user@, a domain or /regex/.")
            % {"value": repr(value), "kind": kind_name(kind)},
            field="value",
        )
    if kind == SENDER and text.endswith("@"):
        raise ValidationError(
            _("%(value)s: a sender entry is a domain, an address or /regex/.")
            % {"value": repr(value)},
            field="value",
        )
    return text.strip(".") if "@" not in text else text


def parse_postgrey(text: str, kind: str, source: str) -> tuple[list[Rule], list[str]]:
    """Rules from a postgrey whitelist file, and one message per line that is not valid."""
    rules: list[Rule] = []
    errors: list[str] = []
    comment: list[str] = []  # the comment block above an entry describes it
    after_entry = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()  # as postgrey: '#' starts a comment anywhere
        if not line:
            if raw.lstrip().startswith("#"):
                if after_entry:
                    comment = []
                comment.append(raw.strip().lstrip("#").strip())
            else:
                comment = []
            after_entry = False
            continue
        after_entry = True
        try:
            rules.append(Rule(kind, clean_value(kind, line), source, " ".join(comment)[:300]))
        except ValidationError as error:
            errors.append(
                _("line %(number)d: %(problem)s") % {"number": number, "problem": error.message}
            )
    return rules, errors


def default_rules() -> list[Rule]:
    """The shipped list of large senders (and postmaster@/abuse@ recipients)."""
    rules: list[Rule] = []
    data = resources.files("courriel.greylist").joinpath("data")
    for kind, name in ((CLIENT, "whitelist_clients"), (RECIPIENT, "whitelist_recipients")):
        parsed, errors = parse_postgrey(data.joinpath(name).read_text("utf-8"), kind, "default")
        assert not errors, errors  # a broken shipped file is a bug, caught by the tests
        rules.extend(parsed)
    return rules


def _suffixes(name: str) -> Iterator[str]:
    """`a.b.example.com` -> itself, `b.example.com`, `example.com`, `com`."""
    while name:
        yield name
        name = name.partition(".")[2]


@dataclass
class _Networks:
    """IP networks grouped by prefix length: one set look-up per length in use."""

    by_prefix: dict[tuple[int, int], dict[int, Rule]] = field(default_factory=dict)

    def add(self, network: IPNetwork, rule: Rule) -> None:
        key = (network.version, network.prefixlen)
        self.by_prefix.setdefault(key, {})[int(network.network_address)] = rule

    def match(self, address: str) -> Rule | None:
        if not self.by_prefix:
            return None
        try:
            ip_version, number = parse_ip(address)
        except ValueError:
            return None
        bits = 32 if ip_version == 4 else 128
        for (version, prefix), networks in self.by_prefix.items():
            if version != ip_version:
                continue
            rule = networks.get(number & (((1 << prefix) - 1) << (bits - prefix)))
            if rule is not None:
                return rule
        return None


@dataclass
class Matcher:
    """Every static whitelist entry, compiled for the hot path."""

    networks: _Networks = field(default_factory=_Networks)
    hosts: dict[str, Rule] = field(default_factory=dict)
    host_patterns: list[tuple[re.Pattern[str], Rule]] = field(default_factory=list)
    sender_domains: dict[str, Rule] = field(default_factory=dict)
    sender_addresses: dict[str, Rule] = field(default_factory=dict)
    sender_patterns: list[tuple[re.Pattern[str], Rule]] = field(default_factory=list)
    recipient_addresses: dict[str, Rule] = field(default_factory=dict)
    recipient_locals: dict[str, Rule] = field(default_factory=dict)
    recipient_domains: dict[str, Rule] = field(default_factory=dict)
    recipient_patterns: list[tuple[re.Pattern[str], Rule]] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)

    @classmethod
    def build(cls, rules: Iterable[Rule]) -> Matcher:
        matcher = cls()
        for rule in rules:
            matcher.add(rule)
        return matcher

    @property
    def needs_host_names(self) -> bool:
        return bool(self.hosts or self.host_patterns)

    def add(self, rule: Rule) -> None:
        self.rules.append(rule)
        value = rule.value
        pattern = _regex(value)
        if rule.kind == CLIENT:
            if pattern is not None:
                self.host_patterns.append((pattern, rule))
            elif (network := _network(value)) is not None:
                self.networks.add(network, rule)
            else:
                self.hosts.setdefault(value, rule)
        elif rule.kind == SENDER:
            if pattern is not None:
                self.sender_patterns.append((pattern, rule))
            elif "@" in value:
                self.sender_addresses.setdefault(value, rule)
            else:
                self.sender_domains.setdefault(value, rule)
        elif pattern is not None:
            self.recipient_patterns.append((pattern, rule))
        elif value.endswith("@"):
            self.recipient_locals.setdefault(value[:-1], rule)
        elif "@" in value:
            self.recipient_addresses.setdefault(value, rule)
        else:
            self.recipient_domains.setdefault(value, rule)

    def client(self, address: str, name: str | None) -> Rule | None:
        rule = self.networks.match(address)
        if rule is not None or not name:
            return rule
        name = name.lower().rstrip(".")
        for suffix in _suffixes(name):
            if suffix in self.hosts:
                return self.hosts[suffix]
        for pattern, rule in self.host_patterns:
            if pattern.search(name):
                return rule
        return None

    def sender(self, sender: str) -> Rule | None:
        """`sender` lower-cased, as received (not normalised)."""
        if not sender:
            return None
        if sender in self.sender_addresses:
            return self.sender_addresses[sender]
        domain = sender.rpartition("@")[2]
        for suffix in _suffixes(domain):
            if suffix in self.sender_domains:
                return self.sender_domains[suffix]
        for pattern, rule in self.sender_patterns:
            if pattern.search(sender):
                return rule
        return None

    def recipient(self, recipient: str) -> Rule | None:
        """`recipient` lower-cased without its sub-address tag."""
        local, _, domain = recipient.rpartition("@")
        rule = self.recipient_addresses.get(recipient) or self.recipient_locals.get(local)
        if rule is not None:
            return rule
        for suffix in _suffixes(domain):
            if suffix in self.recipient_domains:
                return self.recipient_domains[suffix]
        for pattern, rule in self.recipient_patterns:
            if pattern.search(recipient):
                return rule
        return None
