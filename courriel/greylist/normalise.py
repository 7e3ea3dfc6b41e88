"""Triplet normalisation: what makes two delivery attempts "the same message".

A real sending server retries from a neighbouring address of its farm, with a
bounce address that carries a fresh tag, number or signature each time. Keying the
triplet on the raw values would greylist those retries forever, so the client
address is reduced to its network and the sender to a stable form, the way the
best peers do (postgrey, sqlgrey): sub-address tags, SRS0/SRS1 rewriting, BATV
(`prvs=`) signatures and VERP-like numbers are removed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
from functools import lru_cache

import idna

NULL_SENDER = "<>"
MAX_ADDRESS = 320

# SRS0=HHH=TT=orig-domain=orig-local (separator after SRS0 may be =, + or -)
_SRS0 = re.compile(r"^srs0[=+-][^=]*=[^=]*=([^=]+)=(.+)$")
# SRS1=HHH=first-forwarder==HHH=TT=orig-domain=orig-local
_SRS1 = re.compile(r"^srs1[=+-][^=]*=([^=]+)=[=+-][^=]*=[^=]*=([^=]+)=(.+)$")
# BATV: prvs=tag-val=loc-core (some senders swap the two), Microsoft's msprvs1=...
_BATV = re.compile(r"^(?:prvs|msprvs\d*)=([^=]+)=(.+)$")
# Barracuda's variant: btv1==tag==loc-core
_BTV1 = re.compile(r"^btv1==[^=]+==(.+)$")
_BATV_TAG = re.compile(r"^[0-9a-z]{10}")
_NUMBER = re.compile(r"\b\d+\b")
# Long hexadecimal message identifiers with at least one digit (VERP-style bounces).
_HEX_ID = re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b")


def parse_ip(address: str) -> tuple[int, int]:
    """(4 or 6, the address as an integer); IPv4-mapped IPv6 addresses count as IPv4.

    `inet_pton` is some fifty times faster than the `ipaddress` module, and this runs
    for every client the cache has not seen. Raises ValueError for anything else.
    """
    text = address.strip().strip("[]")
    if text[:5].lower() == "ipv6:":
        text = text[5:]
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        pass
    try:
        number = int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except (OSError, ValueError):
        raise ValueError(f"{address!r} is not an IP address") from None
    if number >> 32 == 0xFFFF:
        return 4, number & 0xFFFFFFFF
    return 6, number


@lru_cache(maxsize=65536)
def client_network(address: str, ipv4_prefix: int = 24, ipv6_prefix: int = 64) -> str:
    """`192.0.2.77` -> `192.0.2.0/24`; `2001:db8::5` -> `2001:db8::/64`."""
    version, number = parse_ip(address)
    bits, prefix = (32, ipv4_prefix) if version == 4 else (128, ipv6_prefix)
    prefix = max(0, min(prefix, bits))
    masked = number & (((1 << prefix) - 1) << (bits - prefix))
    network = ipaddress.IPv4Address(masked) if version == 4 else ipaddress.IPv6Address(masked)
    return f"{network}/{prefix}"


SPF_PREFIX = "spf:"


def spf_network(domain: str) -> str:
    """The "client network" of a client that SPF authorised for `domain`: every server
    the domain's SPF record names is one sender (a farm retrying from another machine
    matches). Stored like a network (49 characters at most): a long domain is hashed."""
    name = domain.lower().rstrip(".")
    if len(SPF_PREFIX) + len(name) <= 49:
        return SPF_PREFIX + name
    return SPF_PREFIX + "#" + hashlib.blake2b(name.encode(), digest_size=16).hexdigest()


def _reduce_local(local: str) -> str:
    srs = _SRS0.match(local)
    if srs:
        return f"srs0={srs.group(1)}={_reduce_local(srs.group(2))}"
    srs = _SRS1.match(local)
    if srs:
        return f"srs1={srs.group(1)}={srs.group(2)}={_reduce_local(srs.group(3))}"
    batv = _BATV.match(local)
    if batv:
        first, second = batv.groups()
        # The standard order is tag=local; pick the other part when it looks like the tag.
        local = first if _BATV_TAG.match(second) and not _BATV_TAG.match(first) else second
    else:
        btv1 = _BTV1.match(local)
        if btv1:
            local = btv1.group(1)
    local = local.split("+", 1)[0] or local
    local = _HEX_ID.sub("#", local)
    return _NUMBER.sub("#", local)


def _strip(address: str) -> str:
    text = address.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    return text.lower()


@lru_cache(maxsize=65536)
def normalise_sender(sender: str) -> str:
    """The stable form of an envelope sender; the null sender becomes `<>`."""
    text = _strip(sender or "")
    if not text:
        return NULL_SENDER
    local, at, domain = text.rpartition("@")
    if not at:
        return _reduce_local(text)[:MAX_ADDRESS]
    return f"{_reduce_local(local)}@{domain}"[:MAX_ADDRESS]


@lru_cache(maxsize=65536)
def normalise_recipient(recipient: str) -> str:
    """Lower-cased, without a sub-address tag (`info+news@` is `info@`'s mailbox)."""
    text = _strip(recipient or "")
    local, at, domain = text.rpartition("@")
    if not at:
        return text[:MAX_ADDRESS]
    if "+" in local:
        local = local.split("+", 1)[0] or local
    return f"{local}@{ascii_domain(domain)}"[:MAX_ADDRESS]


def ascii_domain(domain: str) -> str:
    """Hosted domains are stored as A-labels; SMTPUTF8 clients may send U-labels."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return domain


def recipient_domain(recipient: str) -> str:
    return recipient.rpartition("@")[2]


def triplet_key(network: str, sender: str, recipient: str) -> int:
    """The signed 64-bit key of a normalised triplet (the store's primary key)."""
    digest = hashlib.blake2b(
        f"{network}\0{sender}\0{recipient}".encode("utf-8", "surrogatepass"), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)
