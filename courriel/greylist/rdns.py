"""Forward-confirmed reverse DNS, for host-name whitelists.

Anyone can publish any PTR record for their own addresses, so a host name is only
trusted when it resolves back to the client's address (Postfix's `client_name` is
confirmed this way; this is the same check for callers that do not have one).
Loopback and private addresses are never looked up.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict

import dns.asyncresolver
import dns.exception
import dns.resolver
import dns.reversename

MAX_NAMES = 5  # PTR records tried per address
CACHE_SIZE = 10_000
CACHE_TTL = 600.0


def _worth_looking_up(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_global


class ConfirmedNames:
    """An async FCrDNS resolver with a small time-bounded cache."""

    def __init__(
        self,
        timeout: float = 3.0,
        resolver: dns.asyncresolver.Resolver | None = None,
        *,
        only_global: bool = True,
    ) -> None:
        self.timeout = timeout
        self.resolver = resolver
        self.only_global = only_global
        self._cache: OrderedDict[str, tuple[str | None, float]] = OrderedDict()

    def _resolver(self) -> dns.asyncresolver.Resolver:
        if self.resolver is None:
            from courriel.dns.resolver import async_resolver

            self.resolver = async_resolver()  # [dns] nameservers, the shared cache
        return self.resolver

    async def name(self, address: str) -> str | None:
        """The client's forward-confirmed host name, or None."""
        if self.only_global and not _worth_looking_up(address):
            return None
        now = time.monotonic()
        cached = self._cache.get(address)
        if cached is not None and cached[1] > now:
            return cached[0]
        name = await self._lookup(address)
        self._cache[address] = (name, now + CACHE_TTL)
        self._cache.move_to_end(address)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return name

    async def _lookup(self, address: str) -> str | None:
        resolver = self._resolver()
        try:
            ip = ipaddress.ip_address(address)
            pointers = await resolver.resolve(
                dns.reversename.from_address(address), "PTR", lifetime=self.timeout
            )
        except (dns.exception.DNSException, ValueError):
            return None
        record_type = "AAAA" if ip.version == 6 else "A"
        for pointer in list(pointers)[:MAX_NAMES]:
            name = pointer.target.to_text(omit_final_dot=True).lower()
            try:
                answers = await resolver.resolve(name, record_type, lifetime=self.timeout)
            except dns.exception.DNSException:
                continue
            if any(ipaddress.ip_address(answer.address) == ip for answer in answers):
                return name
        return None
