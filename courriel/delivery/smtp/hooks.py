"""The RCPT-time hook where greylisting plugs in (port 25, unauthenticated clients
outside the trusted networks, recipients that exist). The rules live in
`courriel.greylist`; this is the one call the SMTP server makes into them."""

from __future__ import annotations

from courriel.greylist import engine
from courriel.greylist.engine import Stage, Verdict


async def greylist(
    *,
    client_ip: str,
    client_name: str | None,
    sender: str,
    recipient: str,
    stage: Stage,
    spf_domain: str | None = None,
) -> Verdict:
    return await engine.check(
        client_ip=client_ip,
        client_name=client_name,
        sender=sender,
        recipient=recipient,
        stage=stage,
        spf_domain=spf_domain,
    )


def greylisting_off() -> bool:
    """True when every `greylist` call would pass (greylisting turned off): the
    server skips the calls (two coroutine hops per recipient on every message)."""
    return engine.turned_off()
