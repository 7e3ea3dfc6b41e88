"""Asking another node to do something on its disk: HTTPS to its panel port, under
`/cluster/v1/`, the node's certificate checked first (see peers.py), the caller
signed in with its own secret in the `Authorization` header.

Used for what only the node holding the files can do: list and read a domain's
Maildirs, freeze them and hand late mail on during a move, serve a mailbox download,
answer "are you there".
"""

from __future__ import annotations

import http.client
import json
from typing import Any

from courriel.cluster.peers import connect
from courriel.cluster.placement import Peer

SCHEME = "CourrielNode"


class RpcError(ConnectionError):
    """The node could not be asked, or answered with an error."""


class _Connection(http.client.HTTPSConnection):
    def __init__(self, target: Peer, timeout: float) -> None:
        super().__init__(target.address, target.web_port, timeout=timeout)
        self.target = target

    def connect(self) -> None:
        self.sock = connect(self.target, self.target.web_port, self.timeout or 30)


def _authorization() -> str:
    from courriel.cluster.identity import node_secret, server_name

    return f"{SCHEME} {server_name()}:{node_secret()}"


def open_call(
    target: Peer, path: str, body: dict[str, Any] | None = None, timeout: float = 60
) -> http.client.HTTPResponse:
    """POST (or GET without a body) and the response, unread: for streamed answers."""
    connection = _Connection(target, timeout)
    headers = {"Authorization": _authorization(), "Content-Type": "application/json"}
    try:
        connection.request(
            "POST" if body is not None else "GET",
            f"/cluster/v1/{path}",
            body=json.dumps(body).encode() if body is not None else None,
            headers=headers,
        )
        response = connection.getresponse()
    except (OSError, http.client.HTTPException) as error:
        connection.close()
        raise RpcError(
            f"node {target.name} ({target.address}:{target.web_port}): {error}"
        ) from None
    if response.status != 200:
        text = response.read(2000).decode("utf-8", "replace")
        connection.close()
        raise RpcError(f"node {target.name} answered {response.status}: {text}")
    return response


def call(
    target: Peer, path: str, body: dict[str, Any] | None = None, timeout: float = 60
) -> dict[str, Any]:
    """A JSON request and its JSON answer."""
    response = open_call(target, path, body, timeout)
    try:
        return json.loads(response.read())
    except (OSError, ValueError, http.client.HTTPException) as error:
        raise RpcError(f"node {target.name}: unreadable answer ({error})") from None
    finally:
        response.close()
