"""Handing copies to the node that holds their mailbox.

A copy for a mailbox held elsewhere is handed over the `[cluster]` LMTP link at once,
before the sender gets its answer (`hand_over`): that node's "250" means the copy is
on its disk, so the sender's "250" means the same, with no queue write and no queue
run in between. A copy that node does not take now (down, full, slow to answer) goes
into this node's outbound queue like any other mail that leaves (durable before the
sender gets "250"), as a `local` entry naming the mailbox and the Maildir file name
the copy has there, the same as tried at once (so it is stored there once even if
that node did store it but its answer was lost). The queue runner hands it over the
same link (`send`), with the queue's own retries and back-off while that node is
down, and its bounce when the queue's lifetime is over. The routing was done here,
once, as on one machine: the other node only stores the copy.
"""

from __future__ import annotations

import logging
import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from courriel.cluster.peers import PeerUntrusted, connect
from courriel.cluster.placement import Peer, fresh_home, is_here, peer
from courriel.cluster.wire import CopyRef, copy_name
from courriel.config import get_config
from courriel.dots import dot_stuff
from courriel.outbound.spool import Entry, Recipient, get_spool

if TYPE_CHECKING:
    from courriel.accounts.models import Mailbox
    from courriel.delivery.body import Body

log = logging.getLogger("courriel.mail")
TIMEOUT = 60.0
# A copy handed over while the sender waits: a node that does not answer within this
# gets it through the queue, and is not tried that way again for DIRECT_PAUSE.
DIRECT_TIMEOUT = 10.0
DIRECT_PAUSE = 30.0
_unreachable: dict[int, float] = {}  # server id -> monotonic time to try directly again


@dataclass
class Remote:
    """A copy for a mailbox another hosting server holds, decided by the router."""

    mailbox: Mailbox
    address: str
    data: list[bytes | Body]  # trace headers, then the message
    folder: str = ""


def hand_over(queue_id: str, sender: str, remote: Remote) -> list[Entry]:
    """Hand `remote` to its node now; the queue entry made when that node did not take
    it (empty when it did). A big message (a spool file, not in memory) goes through
    the queue, which sends it from its own file."""
    mailbox = remote.mailbox
    size = sum(len(part) for part in remote.data)
    name = copy_name(queue_id, time.time(), mailbox.pk, _origin(), size)
    server = mailbox.domain.server_id
    target = peer(server) if server is not None else None
    small = all(isinstance(part, bytes) for part in remote.data)
    if target is not None and small and _unreachable.get(server, 0.0) < time.monotonic():
        ref = CopyRef(mailbox.pk, name, remote.folder)
        message = b"".join(remote.data)  # type: ignore[arg-type]
        reply = send(target, sender, remote.address, ref, message, DIRECT_TIMEOUT)
        if reply.startswith("451 4.4"):  # not reached: through the queue for a while
            _unreachable[server] = time.monotonic() + DIRECT_PAUSE
        if reply.startswith("2"):
            log.info(
                "%s: from=<%s> to=<%s> mailbox=%s size=%d status=delivered via=node:%s%s",
                queue_id, sender, remote.address, mailbox.login, size, target.name,
                f" folder={remote.folder}" if remote.folder else "",
            )  # fmt: skip
            return []
        log.info("%s: %s did not take the copy now (%s): queued", queue_id, target.name, reply)
    entry = enqueue_copy(
        sender, remote.address, mailbox, remote.data, folder=remote.folder, name=name
    )
    return [entry]


def enqueue_copy(
    sender: str,
    address: str,
    mailbox: Mailbox,
    data: Iterable[bytes | Body],
    *,
    folder: str = "",
    note: str = "",
    name: str = "",
) -> Entry:
    """Queue one copy for `mailbox` (held by another node); `name` keeps the file
    name a copy already has (a copy passed on, late mail of a moved domain)."""
    return get_spool().enqueue(
        sender,
        [
            Recipient(
                address,
                mailbox_id=mailbox.pk,
                delivered_to=address,
                original=address,
                folder=folder,
                name=name,
            )
        ],
        list(data),
        kind="local",
        note=note or f"for mailbox {mailbox.login}, held by another hosting server",
    )


def pass_on(
    ref: CopyRef, content: bytes | Body, sender: str, address: str, mailbox: Mailbox
) -> Entry:
    """A copy handed to us for a mailbox that has just moved away: on to its home."""
    return enqueue_copy(
        sender,
        address,
        mailbox,
        [content],
        folder=ref.folder,
        name=ref.name,
        note=f"copy {ref.name} passed on: mailbox {mailbox.login} moved",
    )


def route_queued(entry: Entry, recipient: Recipient, message: bytes) -> bool:
    """Queue runner: deliver `recipient` (a mailbox) if another node holds it, setting
    its status; False when the mailbox is here (or gone: the caller says so)."""
    home = fresh_home(recipient.mailbox_id) if recipient.mailbox_id else None
    if home is None or is_here(home):
        return False
    target = peer(home)
    if target is None:
        recipient.last_error = "451 4.4.1 The hosting server holding this mailbox is not running"
        return True
    name = recipient.name or copy_name(
        entry.id, entry.created, recipient.mailbox_id or 0, _origin(), len(message)
    )
    ref = CopyRef(recipient.mailbox_id or 0, name, recipient.folder)
    reply = send(target, entry.sender, recipient.delivered_to or recipient.address, ref, message)
    recipient.last_error = reply
    if reply.startswith("2"):
        recipient.status = "sent"
        _unreachable.pop(home, None)  # reached again: copies go to it directly again
    elif reply.startswith("5"):
        recipient.status = "failed"
    return True


def _origin() -> str:
    from courriel.cluster.identity import server_name

    return server_name() or get_config().hostname


# -- the LMTP link -----------------------------------------------------------------------


class NodeLink(smtplib.LMTP):
    """An authenticated LMTP connection to another node over TLS (checked first)."""

    def __init__(self, target: Peer, timeout: float = TIMEOUT) -> None:
        self.target = target
        super().__init__(local_hostname=_origin(), timeout=timeout)
        self.connect(target.address, target.cluster_port)
        self.ehlo_or_helo_if_needed()
        from courriel.cluster.identity import node_secret

        self.user, self.password = _origin(), node_secret()
        self.auth("PLAIN", self.auth_plain, initial_response_ok=True)
        self.born = time.monotonic()

    def _get_socket(self, host: str, port: int, timeout: float) -> ssl.SSLSocket:
        return connect(self.target, port, timeout)

    def hand(self, sender: str, address: str, ref: CopyRef, message: bytes) -> tuple[int, bytes]:
        """One copy: MAIL, RCPT and DATA in one write (PIPELINING, which every LMTP
        server has, RFC 2033), then the message; two round trips instead of four.
        The message is sent only after "354", so a refusal sends nothing more; the
        transaction is reset for the link's next copy. Raises SMTPServerDisconnected
        when the node closed the link."""
        wide = not (sender.isascii() and address.isascii())
        options = " ".join([f"SIZE={len(message)}"] + (["SMTPUTF8"] if wide else []))
        commands = (
            f"MAIL FROM:{smtplib.quoteaddr(sender)} {options}\r\n"
            f"RCPT TO:{smtplib.quoteaddr(address)} {' '.join(ref.params())}\r\n"
            "DATA\r\n"
        )
        self.send(commands.encode("utf-8" if wide else "ascii"))
        mail, rcpt, data = self.getreply(), self.getreply(), self.getreply()
        if data[0] == 354:
            self.send(dot_stuff(message))
            return self.getreply()
        if mail[0] < 400:
            self.rset()
        return next((reply for reply in (mail, rcpt, data) if reply[0] >= 400), data)


class _Pool:
    """Idle links per node, reused by every copy handed over, before the sender's
    answer and by the queue runner's threads (a TLS handshake and a sign-in per copy
    would cost more than the copy)."""

    MAX_AGE = 120.0

    def __init__(self) -> None:
        self._idle: dict[tuple[int, str, int, str], queue.SimpleQueue[NodeLink]] = {}
        self._lock = threading.Lock()

    def _key(self, target: Peer) -> tuple[int, str, int, str]:
        return (target.server_id, target.address, target.cluster_port, target.fingerprint)

    def take(self, target: Peer) -> NodeLink | None:
        with self._lock:
            idle = self._idle.get(self._key(target))
        while idle is not None:
            try:
                link = idle.get_nowait()
            except queue.Empty:
                return None
            if time.monotonic() - link.born < self.MAX_AGE:
                return link
            _close(link)
        return None

    def give_back(self, link: NodeLink) -> None:
        with self._lock:
            self._idle.setdefault(self._key(link.target), queue.SimpleQueue()).put(link)


_pool = _Pool()


def _close(link: NodeLink) -> None:
    try:
        link.quit()
    except (smtplib.SMTPException, OSError):
        link.close()


def send(
    target: Peer,
    sender: str,
    address: str,
    ref: CopyRef,
    message: bytes,
    timeout: float = TIMEOUT,
) -> str:
    """Hand one copy to `target`; its reply ("250 ...", "452 ...") or our diagnosis
    as a 4xx reply when it cannot be reached (the queue tries again)."""
    for attempt in (1, 2):
        link = _pool.take(target) if attempt == 1 else None
        try:
            if link is None:
                link = NodeLink(target, timeout)
            if link.sock is not None:
                link.sock.settimeout(timeout)
            code, text = link.hand(sender, address, ref, message)
            if code == 421:  # the node is closing this link
                _close(link)
            else:
                _pool.give_back(link)
            return _reply(code, text)
        except smtplib.SMTPServerDisconnected:
            if link is not None:
                link.close()
            if attempt == 1:
                continue  # an idle link the node closed: once more on a new one
            return f"451 4.4.2 Node {target.name} closed the connection"
        except PeerUntrusted as error:
            log.error("%s", error)
            return f"451 4.7.5 {error}"
        except smtplib.SMTPAuthenticationError as error:
            refusal = _reply(error.smtp_code, error.smtp_error)
            return f"451 4.7.0 Node {target.name} refused our sign-in: {refusal}"
        except smtplib.SMTPResponseException as error:
            if link is not None:
                link.close()
            return _reply(error.smtp_code, error.smtp_error)
        except (OSError, smtplib.SMTPException, ssl.SSLError) as error:
            if link is not None:
                link.close()
            return f"451 4.4.1 Node {target.name} ({target.address}:{target.cluster_port}): {error}"
    return "451 4.4.1 unreachable"  # pragma: no cover - the loop always returns


def _reply(code: int, text: bytes | str) -> str:
    value = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(value.split())}"
