"""The four mail-reading listeners of `courriel serve`: IMAP on [imap] (STARTTLS) and
[imaps] (implicit TLS), POP3 on [pop3] (STLS) and [pop3s]."""

from __future__ import annotations

from courriel.access.auth import AccessSettings
from courriel.access.imap.session import handle as imap_handle
from courriel.access.listener import Listener, Stream
from courriel.access.pop3.session import handle as pop3_handle
from courriel.config import Config

_PROTOCOLS = {
    # section: (handler, implicit TLS, scheme, reply when an address has too many)
    "imap": (imap_handle, False, "imap", b"* BYE Too many connections from your address.\r\n"),
    "imaps": (imap_handle, True, "imaps", b"* BYE Too many connections from your address.\r\n"),
    "pop3": (
        pop3_handle,
        False,
        "pop3",
        b"-ERR [IN-USE] Too many connections from your address.\r\n",
    ),
    "pop3s": (
        pop3_handle,
        True,
        "pop3s",
        b"-ERR [IN-USE] Too many connections from your address.\r\n",
    ),
}


def services(config: Config) -> list[Listener]:
    from courriel.runtime import bind
    from courriel.tls import server_context

    settings = AccessSettings.from_config(config)
    wanted = [section for section in _PROTOCOLS if getattr(config, section).enabled]
    if not wanted:
        return []
    context = server_context(config)
    listeners = []
    for section in wanted:
        handler, implicit, scheme, busy = _PROTOCOLS[section]

        async def run(stream: Stream, handler=handler) -> None:  # type: ignore[no-untyped-def]
            await handler(stream, settings)

        listeners.append(
            Listener(
                section,
                bind(config, section),
                run,
                implicit_tls=context if implicit else None,
                starttls=None if implicit else context,
                max_per_ip=settings.max_connections_per_ip,
                scheme=scheme,
                busy_reply=busy,
            )
        )
    return listeners
