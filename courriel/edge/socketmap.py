"""Postfix's socketmap protocol: Postfix asks our address resolution at RCPT time.

With this, Postfix refuses an unknown recipient itself (550 at RCPT), instead of
accepting the message, handing it to our LMTP and bouncing it to a sender who may be
forged (backscatter). Requests and answers are netstrings (socketmap_table(5)):
`<len>:<map> <key>,` in, `<len>:OK <value>,` / `NOTFOUND ,` / `TEMP <why>,` out, many
per connection. The maps, each answered by the same services every door uses:

- `domain`: hosted domains and domain aliases (virtual_mailbox_domains);
- `mailbox`: every address our resolution delivers (virtual_mailbox_maps);
- `recipient`: an access map for check_recipient_access: the refusal our SMTP server
  would give (`550 5.1.1 No such user here`, an alias's bounce text, `554 5.4.6` for a
  loop), DUNNO otherwise;
- `senders`: the logins that may use an address as sender (smtpd_sender_login_maps),
  the rule our submission port applies.

A database failure answers TEMP: Postfix then says 451 and the sender retries.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db import DatabaseError

from courriel.config import Config
from courriel.dbthread import run_db
from courriel.runtime import close_server

if TYPE_CHECKING:
    from courriel.delivery.recipients import Classified

log = logging.getLogger("courriel.edge")

MAX_REQUEST = 100_000  # Postfix's own netstring limit for socketmap
IDLE_TIMEOUT = 600.0


class NetstringError(ValueError):
    pass


def netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


def split_netstring(buffer: bytearray) -> bytes | None:
    """The first complete netstring's payload (removed from `buffer`), or None."""
    colon = buffer.find(b":", 0, 7)
    if colon < 0:
        if len(buffer) >= 7 or (buffer and not buffer[:1].isdigit()):
            raise NetstringError("not a netstring")
        return None
    try:
        length = int(buffer[:colon])
    except ValueError:
        raise NetstringError("bad netstring length") from None
    if length > MAX_REQUEST:
        raise NetstringError("request too large")
    end = colon + 1 + length
    if len(buffer) < end + 1:
        return None
    if buffer[end : end + 1] != b",":
        raise NetstringError("netstring not terminated by a comma")
    payload = bytes(buffer[colon + 1 : end])
    del buffer[: end + 1]
    return payload


def _domain(key: str) -> str | None:
    from courriel.accounts.resolution import hosted_domain

    return key if hosted_domain(key) is not None else None


def _classified(key: str) -> Classified:
    from courriel.delivery.recipients import classify

    return classify(key, may_relay=False)


def _mailbox(key: str) -> str | None:
    if key.startswith("@"):
        return None  # whole-domain keys: every address is answered on its own
    classified = _classified(key)
    return key if classified.kind in ("local", "srs_return") else None


def _recipient(key: str) -> str | None:
    classified = _classified(key)
    if classified.kind == "refused" and classified.refusal is not None:
        if classified.refusal.code == 554 and classified.refusal.enhanced == "5.7.1":
            return None  # not ours: reject_unauth_destination has decided already
        return classified.refusal.reply()
    return "DUNNO"


def _senders(key: str) -> str | None:
    from courriel.accounts.resolution import resolve

    if key.startswith("@"):
        return None
    reached = resolve(key).reached
    return ",".join(reached) if reached else None


MAPS: dict[str, Callable[[str], str | None]] = {
    "domain": _domain,
    "mailbox": _mailbox,
    "recipient": _recipient,
    "senders": _senders,
}


def _parse(request: bytes) -> tuple[str, str]:
    name, _, key = request.decode("utf-8", "replace").partition(" ")
    return name, key.strip().lower()


def _reply(value: str | None) -> bytes:
    return b"NOTFOUND " if value is None else b"OK " + value.encode("utf-8")


def answer(request: bytes) -> bytes:
    """One request's reply payload (runs in a worker thread: it may read the
    database). Answers are kept in the routing cache, which forgets them as soon as
    an account changes."""
    from courriel.accounts.routing_cache import cache

    name, key = _parse(request)
    lookup = MAPS.get(name)
    if lookup is None:
        return b"PERM unknown map " + name.encode("utf-8", "replace")[:50]
    if not key or len(key) > 512:
        return b"NOTFOUND "
    try:
        [value] = cache.get(("socketmap", name, key), lambda: [lookup(key)])
    except DatabaseError as error:
        log.warning("socketmap %s %s: database unavailable: %s", name, key, error)
        return b"TEMP database unavailable"
    return _reply(value)


def cached_answer(request: bytes) -> bytes | None:
    """The reply if the routing cache has it: given on the event loop, without a trip
    to a worker thread (Postfix asks two or three of these per recipient)."""
    from courriel.accounts.routing_cache import cache

    name, key = _parse(request)
    found = cache.peek(("socketmap", name, key)) if name in MAPS else None
    return _reply(found[0]) if isinstance(found, list) else None


class SocketmapServer:
    name = "socketmap"

    def __init__(self, config: Config) -> None:
        from courriel.runtime import bind

        self.sock: socket.socket = bind(config, "socketmap")
        self.server: asyncio.AbstractServer | None = None
        self.listening = [
            f"socketmap: Postfix look-ups on {config.socketmap.bind}:{config.socketmap.port}"
        ]

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, sock=self.sock)

    async def stop(self) -> None:
        await close_server(self.server)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = bytearray()
        try:
            while True:
                request = split_netstring(buffer)
                if request is None:
                    chunk = await asyncio.wait_for(reader.read(65536), IDLE_TIMEOUT)
                    if not chunk:
                        return
                    buffer += chunk
                    continue
                reply = cached_answer(request) or await run_db(answer, request)
                writer.write(netstring(reply))
                await writer.drain()
        except NetstringError as error:
            log.warning("socketmap client sent garbage (%s): closing", error)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


def services(config: Config) -> list[SocketmapServer]:
    return [SocketmapServer(config)] if config.socketmap.enabled else []
