"""The RCPT-time hook where greylisting plugs in (port 25, unauthenticated clients
outside the trusted networks, recipients that exist). The engine lives in
`courriel.greylist`; without it, mail is never greylisted."""

from __future__ import annotations

import importlib
import logging
from typing import Any, Protocol

log = logging.getLogger("courriel.smtp")


class Verdict(Protocol):
    action: str  # "pass" or "defer"
    text: str
    header: str | None


async def greylist(
    *, client_ip: str, client_name: str | None, sender: str, recipient: str
) -> Verdict | None:
    try:
        engine: Any = importlib.import_module("courriel.greylist.engine")
    except ImportError:
        return None
    return await engine.check(
        client_ip=client_ip, client_name=client_name, sender=sender, recipient=recipient
    )
