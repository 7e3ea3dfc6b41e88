"""The DNS look-ups of the SPF and DKIM libraries, routed through the platform's one
resolver (`courriel.dns.resolver`: `[dns] nameservers`, shared TTL cache).

pyspf looks names up through its module-level `spf.DNSLookup` function (its plug-in
point for pydns or dnspython); dkimpy takes a `dnsfunc` argument. Both are given
functions that ask our resolver, so no look-up ever goes to the system's resolver,
and a failure to get an answer stays a *temporary* error: pyspf turns it into
`temperror`, and for DKIM `DNSTemporaryError` passes through dkimpy (which would
otherwise report a failed key fetch as a failed signature).
"""

from __future__ import annotations

from typing import Any

import spf

from courriel.dns import resolver
from courriel.dns.resolver import DNSTemporaryError


def spf_lookup(name: str, qtype: str, strict: Any = True, timeout: float = 20) -> list[Any]:
    """pyspf's DNSLookup contract: [((name, qtype), value), ...]; spf.TempError when
    the DNS cannot answer now; [] when the name or the records do not exist."""
    try:
        records = resolver.query(name, qtype)
    except DNSTemporaryError as error:
        raise spf.TempError(f"DNS {error}") from None
    found: list[Any] = []
    for rdata in records:
        if qtype in ("A", "AAAA"):
            found.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            found.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            found.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            found.append(((name, qtype), rdata.strings))
    return found


# Every SPF evaluation in this process asks our resolver.
spf.DNSLookup = spf_lookup


def dkim_txt(name: bytes | str, timeout: float = 5) -> bytes | None:
    """dkimpy's dnsfunc: the key record at `name` (its strings joined), None when there
    is none; raises DNSTemporaryError when the DNS cannot answer (a temporary error,
    never a failed signature)."""
    text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
    records = resolver.query(text.rstrip("."), "TXT")
    values = [b"".join(record.strings) for record in records]
    for value in values:
        if value.lstrip().lower().startswith(b"v=dkim1"):
            return value
    return values[0] if values else None
