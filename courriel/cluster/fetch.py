"""What a hosting server fetches from another for the panel and the API: the download
of a mailbox held there (checked here first: the caller's permission; there: that
the request comes from a node of the platform)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from courriel.errors import NotFoundError, ServiceUnavailableError
from courriel.i18n import gettext as _

CHUNK = 64 * 1024


def remote_download(
    server_id: int | None, mailbox_id: int, fmt: str, folder: str | None
) -> Iterator[bytes]:
    """Open the download at the mailbox's server now (so a refusal is an error, not a
    cut-short file), then stream its bytes."""
    from courriel.cluster import rpc
    from courriel.cluster.placement import peer

    target = peer(server_id) if server_id is not None else None
    try:
        if target is None:
            raise rpc.RpcError("not running")
        response = rpc.open_call(
            target, "download", {"mailbox": mailbox_id, "format": fmt, "folder": folder}, 300
        )
    except rpc.RpcError as error:
        if " answered 404:" in str(error):
            detail = str(error).split(" answered 404:", 1)[1].strip()
            try:
                message = json.loads(detail).get("detail", detail)
            except ValueError:
                message = detail
            raise NotFoundError(message) from None
        raise ServiceUnavailableError(
            _("The hosting server holding this mailbox does not answer; try again later.")
        ) from None

    def chunks() -> Iterator[bytes]:
        try:
            while data := response.read(CHUNK):
                yield data
        finally:
            response.close()

    return chunks()
