"""The platform's one DNS resolver: MX look-ups for the queue, SPF/DKIM/DMARC records
for incoming mail, reverse DNS for greylisting, TXT records for domain verification.

Every caller goes through here so that `[dns] nameservers` points them all at the
same servers (the test suite's own authoritative server, a provider's local caching
resolver) and one cache, honouring each answer's TTL, is shared by the threads of a
process. Failures are split the way mail needs them split:

- the name or the record does not exist: an empty answer (a permanent fact);
- the DNS could not answer (timeout, SERVFAIL, no server reachable): `DNSTemporaryError`,
  which callers turn into a temporary refusal (`451 4.4.3`), never a permanent one.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.reversename

from courriel import cachedonly
from courriel.config import get_config
from courriel.errors import ConfigError
from courriel.units import parse_duration

T = TypeVar("T")


class DNSTemporaryError(Exception):
    """The DNS could not answer now; the same question may succeed later."""


@dataclass(frozen=True)
class Nameserver:
    address: str
    port: int = 53


def parse_nameserver(text: str) -> Nameserver:
    """`192.0.2.53`, `127.0.0.1:5353`, `::1` or `[::1]:5353`."""
    value = text.strip()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket:
            raise ValueError(f"no closing bracket in {text!r}")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
        port = int(port_text)
    else:
        host, port = value, 53
    ipaddress.ip_address(host)  # a name server is an address, never a name to look up
    if not 0 < port < 65536:
        raise ValueError(f"port out of range in {text!r}")
    return Nameserver(host, port)


@dataclass(frozen=True)
class Settings:
    nameservers: tuple[Nameserver, ...]  # empty: the system's (/etc/resolv.conf)
    timeout: float  # one whole look-up, every server and retry included

    @classmethod
    def from_config(cls) -> Settings:
        section = get_config().dns
        try:
            servers = tuple(parse_nameserver(item) for item in section.nameservers)
        except ValueError as error:
            raise ConfigError(
                f"[dns] nameservers: {error}; write addresses like 192.0.2.53, "
                "127.0.0.1:5353 or [::1]:53"
            ) from None
        return cls(servers, parse_duration(section.timeout).total_seconds())


_cache = dns.resolver.LRUCache(max_size=20_000)  # thread-safe; honours every TTL
_lock = threading.Lock()
_resolvers: dict[tuple[Settings, bool], Any] = {}


def _configure(resolver: dns.resolver.Resolver, settings: Settings) -> None:
    if settings.nameservers:
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(server.address, server.port)
            for server in settings.nameservers
        ]
    resolver.lifetime = settings.timeout
    resolver.timeout = min(2.0, settings.timeout)
    resolver.cache = _cache


def _make(cls: type[dns.resolver.Resolver], settings: Settings) -> dns.resolver.Resolver:
    try:
        resolver = cls(configure=not settings.nameservers)
    except dns.resolver.NoResolverConfiguration:
        resolver = cls(configure=False)
    _configure(resolver, settings)
    return resolver


def sync_resolver() -> dns.resolver.Resolver:
    """The blocking resolver, for threads (queue runner, services, CLI)."""
    settings = Settings.from_config()
    key = (settings, False)
    with _lock:
        if key not in _resolvers:
            _resolvers[key] = _make(dns.resolver.Resolver, settings)
        return _resolvers[key]


def async_resolver() -> dns.asyncresolver.Resolver:
    """The asyncio resolver, for the mail servers' event loops."""
    settings = Settings.from_config()
    key = (settings, True)
    with _lock:
        if key not in _resolvers:
            _resolvers[key] = _make(dns.asyncresolver.Resolver, settings)
        return _resolvers[key]


def clear_cache() -> None:
    _cache.flush()
    _answers.clear()


_EMPTY = (
    dns.resolver.NXDOMAIN,
    dns.resolver.NoAnswer,
    # Not a name DNS can hold: nothing can exist there.
    dns.name.EmptyLabel,
    dns.name.LabelTooLong,
    dns.name.NameTooLong,
)


def _temporary(name: str, rdtype: str, error: Exception) -> DNSTemporaryError:
    return DNSTemporaryError(f"DNS look-up of {name} {rdtype} failed: {error}")


def _no_records(name: str, rdtype: str, error: Exception) -> list[Any]:
    """An empty answer for "does not exist", DNSTemporaryError for everything else."""
    if isinstance(error, _EMPTY):
        return []
    raise _temporary(name, rdtype, error) from None


# Answers as `query` returns them, by (name, type): dnspython's own cache spares the
# network, but a cached `resolve()` still costs some 0.2 ms, and incoming mail asks
# four or five names per message (SPF, HELO, DKIM key, DMARC). Kept as long as the
# answer's TTL allows; "does not exist" as long as the zone's negative TTL (RFC 2308).
_answers: dict[tuple[str, str], tuple[float, list[Any]]] = {}
_ANSWERS_MAX = 50_000
_NEGATIVE_TTL = 60.0  # when the answer carries no SOA to say how long


def _remember(key: tuple[str, str], ttl: float, records: list[Any]) -> list[Any]:
    if ttl > 0:
        if len(_answers) >= _ANSWERS_MAX:
            _answers.clear()
        _answers[key] = (time.monotonic() + min(ttl, 86_400.0), records)
    return records


def _negative_ttl(error: Exception) -> float:
    if isinstance(error, dns.resolver.NoAnswer):
        responses = [error.kwargs.get("response")]
    elif isinstance(error, dns.resolver.NXDOMAIN):
        responses = list(error.responses().values())
    else:
        return 0.0
    for response in responses:
        for rrset in getattr(response, "authority", None) or []:
            if rrset.rdtype == dns.rdatatype.SOA:
                return float(min(rrset.ttl, rrset[0].minimum))
    return _NEGATIVE_TTL


def _known(name: str, rdtype: str) -> tuple[tuple[str, str], list[Any] | None]:
    key = (name.lower().rstrip("."), rdtype)
    found = _answers.get(key)
    if found is not None and found[0] > time.monotonic():
        return key, found[1]
    return key, None


# -- what a computation rested on ----------------------------------------------------------
# A result computed from DNS answers only (an SPF verdict) can be kept as long as every
# answer it used is still the one in the cache: the same question on the same answers
# gets the same answer.
class _Used(threading.local):
    answers: list[tuple[tuple[str, str], Any]] | None = None


_used = _Used()
Used = tuple[tuple[tuple[str, str], Any], ...]


def recording(fn: Callable[[], T]) -> tuple[T, Used]:
    """`fn()`'s result and the cached answers it was given (for `still_cached`)."""
    outer, _used.answers = _used.answers, []
    try:
        result = fn()
        used = tuple(_used.answers)
    finally:
        if outer is not None:
            outer.extend(_used.answers)
        _used.answers = outer
    return result, used


def still_cached(used: Used) -> bool:
    """Whether every answer in `used` is still cached, unchanged and unexpired (one
    that could not be cached, or could not be had, makes it false)."""
    now = time.monotonic()
    for key, entry in used:
        if entry is None or _answers.get(key) is not entry or entry[0] <= now:
            return False
    return True


def query(name: str, rdtype: str) -> Sequence[Any]:
    """The records of one type at a name ([] if the name or the records do not exist).
    In cached-only mode (`courriel.cachedonly`), an answer not at hand raises NotCached."""
    key, known = _known(name, rdtype)
    if known is None:
        if cachedonly.active():
            if _used.answers is not None:
                _used.answers.append((key, None))
            raise cachedonly.miss(f"DNS {name} {rdtype}")
        try:
            known = _ask(key, name, rdtype)
        except DNSTemporaryError:
            if _used.answers is not None:
                _used.answers.append((key, None))
            raise
    if _used.answers is not None:
        entry = _answers.get(key)  # None when the answer could not be kept (no TTL)
        _used.answers.append((key, entry if entry is not None and entry[1] is known else None))
    return known


def _ask(key: tuple[str, str], name: str, rdtype: str) -> list[Any]:
    try:
        answer = sync_resolver().resolve(name, rdtype, search=False)
    except (dns.exception.DNSException, OSError) as error:
        return _remember(key, _negative_ttl(error), _no_records(name, rdtype, error))
    return _remember(key, answer.expiration - time.time(), list(answer))


async def aquery(name: str, rdtype: str) -> Sequence[Any]:
    """`query` for the event loop."""
    key, known = _known(name, rdtype)
    if known is not None:
        return known
    try:
        answer = await async_resolver().resolve(name, rdtype, search=False)
    except (dns.exception.DNSException, OSError) as error:
        return _remember(key, _negative_ttl(error), _no_records(name, rdtype, error))
    return _remember(key, answer.expiration - time.time(), list(answer))


def name_exists(name: str) -> bool:
    """Whether a name exists at all (NXDOMAIN or not), for the queue's MX fallback."""
    try:
        sync_resolver().resolve(name, "SOA", search=False)
    except dns.resolver.NXDOMAIN:
        return False
    except dns.resolver.NoAnswer:
        return True
    except (dns.exception.DNSException, OSError) as error:
        raise _temporary(name, "SOA", error) from None
    return True


def txt_strings(records: Sequence[Any]) -> list[str]:
    """TXT records as text, each record's strings joined (RFC 7208 3.3)."""
    return [b"".join(record.strings).decode("utf-8", "replace") for record in records]


def txt(name: str) -> list[str]:
    return txt_strings(query(name, "TXT"))


async def atxt(name: str) -> list[str]:
    return txt_strings(await aquery(name, "TXT"))


@dataclass(frozen=True)
class MXAnswer:
    hosts: list[str]  # by preference; the domain itself when it has no MX (RFC 5321 5.1)
    null_mx: bool = False  # "0 ." (RFC 7505): the domain accepts no mail
    exists: bool = True


def mx(domain: str) -> MXAnswer:
    """A domain's mail servers, in order of preference."""
    try:
        answer = sync_resolver().resolve(domain, "MX", search=False)
    except dns.resolver.NXDOMAIN:
        return MXAnswer([], exists=False)
    except dns.resolver.NoAnswer:
        return MXAnswer([domain])
    except (dns.exception.DNSException, OSError) as error:
        raise _temporary(domain, "MX", error) from None
    records = sorted(answer, key=lambda r: r.preference)
    hosts = [r.exchange.to_text(omit_final_dot=True) for r in records]
    if hosts in ([""], ["."]):
        return MXAnswer([], null_mx=True)
    return MXAnswer(hosts)


def reverse_name(address: str) -> dns.name.Name:
    return dns.reversename.from_address(address)


def rdtype_for(address: str) -> str:
    return "AAAA" if ipaddress.ip_address(address).version == 6 else "A"
