"""The SMTP server's two counting points: every RCPT refusal and every message after
DATA go through these wrappers of `SmtpPolicy.handle_RCPT` and `handle_DATA`, so the
policy's many ways of answering are counted in one place, after the answer is known.
Each adds a dictionary increment to the command (`courriel.stats.counters`)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from courriel.stats import counters
from courriel.stats.reasons import greylisting, reason_of

Hook = Callable[..., Awaitable[Any]]


def counted_rcpt(hook: Hook) -> Hook:
    @functools.wraps(hook)
    async def wrapper(
        policy: Any, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> Any:
        reply = await hook(policy, server, session, envelope, address, options)
        if isinstance(reply, str) and not reply.startswith("2") and not greylisting(reply):
            counters.count("refused", counters.domain_of(address), reason_of(reply))
        return reply

    return wrapper


def counted_data(hook: Hook) -> Hook:
    @functools.wraps(hook)
    async def wrapper(policy: Any, server: Any, session: Any, envelope: Any) -> Any:
        reply = await hook(policy, server, session, envelope)
        recipients = list(envelope.rcpt_tos)
        replies = reply if isinstance(reply, list) else [str(reply)] * len(recipients)
        counters.message(
            recipients,
            replies,
            sender=getattr(envelope, "sender", "") or "",
            signed_in=bool(session.authenticated),
            lmtp=isinstance(reply, list),
        )
        return reply

    return wrapper
