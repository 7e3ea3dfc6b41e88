"""DKIM signatures and ARC seals on mail leaving us, with the key of a hosted domain.

Submissions and automatic replies are signed for the header From domain. Forwarded
mail keeps the sender's signatures and gets our ARC seal for the forwarding domain
(i=1; d=monsite.be on mail forwarded to gmail.com), which tells the receiver what we
checked; it is DKIM-signed by us only when its From is ours and we vouch for it
(`router.forwarded_copy`).
"""

from __future__ import annotations

import logging
import threading
import time

import dkim

from courriel.accounts.dkimkeys import ensure_key
from courriel.accounts.models import Domain

log = logging.getLogger("courriel.dkim")

SIGNED_HEADERS = [
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"auto-submitted",
    b"list-id",
]
_CACHE_SECONDS = 60
_cache: dict[str, tuple[float, tuple[str, bytes] | None]] = {}
_lock = threading.Lock()


def _key_for(domain_name: str) -> tuple[str, bytes] | None:
    now = time.monotonic()
    with _lock:
        cached = _cache.get(domain_name)
    if cached and cached[0] > now:
        return cached[1]
    domain = Domain.objects.filter(name=domain_name).first()
    value = None
    if domain is not None:
        value = (domain.dkim_selector, ensure_key(domain).encode("ascii"))
    with _lock:
        _cache[domain_name] = (now + _CACHE_SECONDS, value)
    return value


def signature(message: bytes, domain_name: str) -> bytes:
    """The DKIM-Signature header line for `message`, or b"" if we have no key for
    the domain (it is not hosted here) or signing fails (the mail still goes)."""
    key = _key_for(domain_name)
    if key is None:
        return b""
    selector, private = key
    present = {name.lower() for name in _header_names(message)}
    include = [h for h in SIGNED_HEADERS if h in present] or [b"from"]
    try:
        return dkim.sign(
            message,
            selector.encode("ascii"),
            domain_name.encode("ascii"),
            private,
            include_headers=include,
            linesep=b"\r\n",
        )
    except Exception:  # dkimpy raises several kinds; an unsigned mail beats no mail
        log.exception("DKIM signing failed for %s", domain_name)
        return b""


def sign(message: bytes, domain_name: str) -> bytes:
    return signature(message, domain_name) + message


def _header_names(message: bytes) -> list[bytes]:
    end = message.find(b"\r\n\r\n")
    block = message if end < 0 else message[:end]
    names = []
    for line in block.split(b"\r\n"):
        if line and line[:1] not in (b" ", b"\t") and b":" in line:
            names.append(line.split(b":", 1)[0].strip())
    return names


def arc_seal(message: bytes, domain_name: str, authserv_id: str) -> bytes:
    """`message` with our ARC set (RFC 8617) on top, sealed with `domain_name`'s key:
    it carries our Authentication-Results (authserv-id `authserv_id`) to the next
    receiver. Unchanged when we have no key for the domain or sealing fails."""
    key = _key_for(domain_name)
    if key is None:
        return message
    selector, private = key
    present = {name.lower() for name in _header_names(message)}
    include = [h for h in SIGNED_HEADERS if h in present] or [b"from"]
    try:
        headers = dkim.arc_sign(
            message,
            selector.encode("ascii"),
            domain_name.encode("ascii"),
            private,
            authserv_id.encode("ascii"),
            include_headers=include,
            linesep=b"\r\n",
        )
    except Exception:  # as for signing: an unsealed forward beats no forward
        log.exception("ARC sealing failed for %s", domain_name)
        return message
    return b"".join(headers) + message
