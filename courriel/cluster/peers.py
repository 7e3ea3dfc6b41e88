"""Trusting another node: TLS to it, checked against `[cluster] ca_file` (chain and
host name) or, without one, against the certificate fingerprint the node published
in the database when it started. Nothing is sent to a node, the secret least of
all, before its certificate has been checked.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import ssl

from courriel.cluster.placement import Peer
from courriel.config import get_config


class PeerUntrusted(ConnectionError):
    """The node's certificate is not the one expected: nothing was sent to it."""


def client_context() -> tuple[ssl.SSLContext, bool]:
    """(context, verified by a CA): one per call, so a changed ca_file is seen."""
    ca_file = get_config().cluster.ca_file
    if ca_file:
        context = ssl.create_default_context(cafile=ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context, True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Checked by fingerprint right after the handshake (check_pinned), not by a CA.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context, False


def check_pinned(sock: ssl.SSLSocket | ssl.SSLObject, peer: Peer) -> None:
    der = sock.getpeercert(binary_form=True) or b""
    seen = hashlib.sha256(der).hexdigest()
    if not peer.fingerprint or not hmac.compare_digest(seen, peer.fingerprint):
        raise PeerUntrusted(
            f"node {peer.name} ({peer.address}) showed a certificate ({seen[:16]}...) that is "
            "not the one it registered; nothing was sent"
        )


def wrap(raw: socket.socket, peer: Peer) -> ssl.SSLSocket:
    """TLS over a connected socket to `peer`, its certificate checked."""
    context, by_ca = client_context()
    sock = context.wrap_socket(raw, server_hostname=peer.hostname if by_ca else None)
    if not by_ca:
        try:
            check_pinned(sock, peer)
        except PeerUntrusted:
            sock.close()
            raise
    return sock


def connect(peer: Peer, port: int, timeout: float) -> ssl.SSLSocket:
    raw = socket.create_connection((peer.address, port), timeout=timeout)
    # Commands and replies are small and each waits for the other side: no Nagle delay.
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return wrap(raw, peer)
    except BaseException:
        raw.close()
        raise
