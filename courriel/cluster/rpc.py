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
from typing import TYPE_CHECKING, Any

from courriel.cluster.peers import connect
from courriel.cluster.placement import Peer

if TYPE_CHECKING:
    from courriel.accounts.permissions import Actor
    from courriel.errors import CourrielError

SCHEME = "CourrielNode"


class RpcError(ConnectionError):
    """The node could not be asked (`status` 0), or answered with an error (`status`,
    and `body`: the start of its answer)."""

    def __init__(self, message: str, status: int = 0, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


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
        raise RpcError(
            f"node {target.name} answered {response.status}: {text}", response.status, text
        )
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


# --- a service run on the node that holds the files, on a person's behalf ----------------


def actor_fields(actor: Actor) -> dict[str, Any]:
    """The actor, as the node doing the work checks permissions and audits again."""
    return {
        "role": actor.role,
        "name": actor.name,
        "mailbox_id": actor.mailbox_id,
        "user_id": actor.user_id,
        "remote": actor.remote,
    }


def actor_from(fields: Any) -> Actor:
    from courriel.accounts.permissions import Actor

    if not isinstance(fields, dict) or fields.get("role") not in ("provider", "owner", "mailbox"):
        raise ValueError("actor: role, name, mailbox_id, user_id, remote")
    mailbox_id, user_id = fields.get("mailbox_id"), fields.get("user_id")
    if not all(v is None or isinstance(v, int) for v in (mailbox_id, user_id)):
        raise ValueError("actor: mailbox_id and user_id are numbers or null")
    return Actor(
        fields["role"], str(fields.get("name", "")), mailbox_id, user_id, bool(fields.get("remote"))
    )


def call_service(target: Peer, path: str, body: dict[str, Any], timeout: float = 600) -> Any:
    """Run a service there: its answer, or the error it raised there raised here again
    (same kind, same message), so that the panel, the API and the CLI show it as if the
    service had run here. A node that cannot be asked is a ServiceUnavailableError."""
    from courriel.errors import ServiceUnavailableError
    from courriel.i18n import gettext as _

    try:
        return call(target, path, body, timeout).get("result")
    except RpcError as error:
        try:
            answer = json.loads(error.body) if error.status else {}
        except ValueError:
            answer = {}
        kind = _ERRORS.get(answer.get("error", "")) if isinstance(answer, dict) else None
        if kind is not None:
            raise kind(str(answer.get("detail", ""))) from None
        raise ServiceUnavailableError(
            _("The hosting server %(server)s does not answer; try again later.")
            % {"server": target.name}
        ) from None


def service_error(error: CourrielError) -> tuple[dict[str, Any], int]:
    """What the node doing the work answers for an expected failure: its kind is the
    nearest one the caller knows (a QuotaExceededError is a LimitError there)."""
    kind = next((k.__name__ for k in type(error).__mro__ if k.__name__ in _ERRORS), "")
    return {"error": kind, "detail": error.message}, error.http_status


def _error_kinds() -> dict[str, type[CourrielError]]:
    from courriel import errors

    kinds = [
        errors.ValidationError,
        errors.LimitError,
        errors.ConflictError,
        errors.NotFoundError,
        errors.PermissionDeniedError,
        errors.ServiceUnavailableError,
    ]
    return {kind.__name__: kind for kind in kinds}


_ERRORS = _error_kinds()
