"""`/cluster/v1/`: what a node asks of this one (see rpc.py for the calling side).

Every request must be signed by a registered node (its name and secret in the
`Authorization` header, checked against the hash it registered); a move's requests
must come from that move's target and concern that move's domain. Anyone else gets
403 and nothing about the platform.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from courriel.cluster.rpc import SCHEME

log = logging.getLogger("courriel.cluster")
View = Callable[..., HttpResponse]


def _caller(request: HttpRequest) -> str | None:
    from courriel.cluster.registry import node_sign_in

    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    name, _, secret = credentials.partition(":")
    ip = request.META.get("REMOTE_ADDR", "")
    if scheme != SCHEME or not name or not secret:
        return None
    return name if node_sign_in(name, secret, ip, "node-rpc") == 0 else None


def node_only(view: View) -> View:
    @csrf_exempt
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        from courriel.cluster.identity import clustered

        caller = _caller(request) if clustered() else None
        if caller is None:
            return JsonResponse({"detail": "not a node of this platform"}, status=403)
        try:
            body = json.loads(request.body or b"{}") if request.method == "POST" else {}
        except ValueError:
            return JsonResponse({"detail": "body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return JsonResponse({"detail": "body is not a JSON object"}, status=400)
        try:
            return view(request, caller, body, *args, **kwargs)
        except _Refused as refused:
            return JsonResponse({"detail": str(refused)}, status=refused.status)

    return wrapped


class _Refused(Exception):
    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@node_only
def ping(request: HttpRequest, caller: str, body: dict[str, Any]) -> HttpResponse:
    import courriel
    from courriel.cluster.identity import server_name

    return JsonResponse({"node": server_name(), "version": courriel.__version__})


def _move_from(caller: str, move_id: int, *states: str) -> Any:
    """The move, if `caller` is its target and this node its source."""
    from courriel.cluster.identity import server_name
    from courriel.cluster.models import DomainMove

    move = (
        DomainMove.objects.select_related("domain", "source", "target").filter(pk=move_id).first()
    )
    if move is None or move.target.name != caller or move.source.name != server_name():
        raise _Refused("no such move between these nodes", 404)
    if states and move.state not in states:
        raise _Refused(f"the move is {move.state}")
    return move


def _roots(move: Any, frozen: bool) -> tuple[Any, list[str]]:
    from courriel.cluster.moves import family_directories
    from courriel.config import get_config

    root = get_config().mail_root
    if frozen:
        root = root / ".moving" / str(move.pk)
    return root, family_directories(move.domain)


@node_only
def tree(request: HttpRequest, caller: str, body: dict[str, Any], move_id: int) -> HttpResponse:
    """The move's domain directories as they are here (live, or frozen at the fence)."""
    from courriel.cluster.models import DomainMove
    from courriel.cluster.tree import listing

    frozen = bool(body.get("frozen"))
    move = _move_from(
        caller, move_id, *((DomainMove.SWITCHING,) if frozen else (DomainMove.COPYING,))
    )
    root, directories = _roots(move, frozen)
    items = listing(root, directories)
    return JsonResponse({"directories": directories, "items": [i.as_list() for i in items]})


@node_only
def files(request: HttpRequest, caller: str, body: dict[str, Any], move_id: int) -> HttpResponse:
    """The files asked for, one stream (see tree.send_files)."""
    from courriel.cluster.models import DomainMove
    from courriel.cluster.tree import safe_relative, send_files

    frozen = bool(body.get("frozen"))
    move = _move_from(caller, move_id, DomainMove.COPYING, DomainMove.SWITCHING)
    root, directories = _roots(move, frozen)
    paths = body.get("paths")
    if not isinstance(paths, list) or len(paths) > 5000:
        raise _Refused("paths: a list of at most 5000 paths", 400)
    try:
        wanted = [safe_relative(str(p)) for p in paths]
    except ValueError as error:
        raise _Refused(str(error), 400) from None
    if any(p.split("/", 1)[0] not in directories for p in wanted):
        raise _Refused("a path outside the domain's directories", 400)
    from courriel.web.streaming import pulled_in_threads

    return StreamingHttpResponse(
        pulled_in_threads(request, send_files(root, wanted)),
        content_type="application/octet-stream",
    )


@node_only
def fence(request: HttpRequest, caller: str, body: dict[str, Any], move_id: int) -> HttpResponse:
    """Freeze the domain's Maildirs for the last copy: its IMAP/POP3 sessions here end
    (logins wait while the move switches), and its directories are set aside as they
    are; deliveries still arriving start new ones, handed on after the switch."""
    from courriel.accounts.models import Mailbox
    from courriel.cluster.models import DomainMove
    from courriel.cluster.sessions import kick
    from courriel.mailstore.maildir import fsync_dir

    move = _move_from(caller, move_id, DomainMove.SWITCHING)
    top = move.domain
    ids = list(
        Mailbox.objects.filter(domain__in=[top, *top.subservers.all()]).values_list("pk", flat=True)
    )
    kicked = kick(ids)
    root, directories = _roots(move, False)
    aside = root / ".moving" / str(move.pk)
    if not aside.exists():
        building = root / ".moving" / f"{move.pk}.building"
        building.mkdir(mode=0o700, parents=True, exist_ok=True)
        for directory in directories:
            if (root / directory).is_dir():
                os.rename(root / directory, building / directory)
        fsync_dir(building)
        os.rename(building, aside)
        fsync_dir(root / ".moving")
        fsync_dir(root)
    log.warning(
        "move %s: %s frozen here for the switch (%d sessions ended)", move.pk, top.name, kicked
    )
    return JsonResponse({"kicked": kicked})


@node_only
def sweep(request: HttpRequest, caller: str, body: dict[str, Any], move_id: int) -> HttpResponse:
    """After the switch: late mail for the domain here is handed to its new home."""
    from courriel.cluster.models import DomainMove
    from courriel.cluster.sweep import sweep_directory
    from courriel.outbound.spool import get_spool

    move = _move_from(caller, move_id, DomainMove.DRAINING)
    _root, directories = _roots(move, False)
    late, left = 0, False
    for directory in directories:
        handed, remains = sweep_directory(directory)
        late += handed
        left = left or remains
    from courriel.accounts.models import Mailbox

    top = move.domain
    ids = set(
        Mailbox.objects.filter(domain__in=[top, *top.subservers.all()]).values_list("pk", flat=True)
    )
    pending = sum(
        1 for entry in get_spool().entries() for r in entry.pending if r.mailbox_id in ids
    )
    return JsonResponse({"late": late, "left": left, "pending": pending})


@node_only
def finish(request: HttpRequest, caller: str, body: dict[str, Any], move_id: int) -> HttpResponse:
    """The move is over: the frozen copy of the domain goes (the new node has it all)."""
    from courriel.cluster.models import DomainMove

    move = _move_from(caller, move_id, DomainMove.DRAINING, DomainMove.DONE)
    root, _directories = _roots(move, True)
    shutil.rmtree(root, ignore_errors=True)
    return JsonResponse({"removed": not root.exists()})


@node_only
def download(request: HttpRequest, caller: str, body: dict[str, Any]) -> HttpResponse:
    """A mailbox held here, downloaded through another node's panel or API (which
    checked the user's permission)."""
    from courriel.accounts.models import Mailbox
    from courriel.backup.download import FORMATS, local_download
    from courriel.cluster.placement import is_here
    from courriel.errors import NotFoundError
    from courriel.web.streaming import pulled_in_threads

    mailbox = Mailbox.objects.select_related("domain").filter(pk=body.get("mailbox")).first()
    if mailbox is None or not is_here(mailbox.domain.server_id):
        raise _Refused("no such mailbox here", 404)
    fmt, folder = body.get("format"), body.get("folder")
    if fmt not in FORMATS or not (folder is None or isinstance(folder, str)):
        raise _Refused("format: mbox or maildir; folder: a name or null", 400)
    try:
        found = local_download(mailbox, fmt, folder)
    except NotFoundError as error:
        raise _Refused(str(error), 404) from None
    return StreamingHttpResponse(
        pulled_in_threads(request, found.chunks), content_type=found.content_type
    )


@node_only
def chores(request: HttpRequest, caller: str, body: dict[str, Any]) -> HttpResponse:
    """Another node committed a change for files held here: do it now."""
    from courriel.cluster.chores import run_chores

    return JsonResponse({"done": run_chores()})


def _service(run: Callable[[Any], Any], body: dict[str, Any]) -> HttpResponse:
    """Run a service here for a person signed in on the calling node: the actor is
    theirs, so this node checks the permissions again and audits under their name."""
    from courriel.cluster.rpc import actor_from, service_error
    from courriel.errors import CourrielError

    try:
        actor = actor_from(body.get("actor"))
    except ValueError as error:
        raise _Refused(str(error), 400) from None
    try:
        return JsonResponse({"result": run(actor)})
    except CourrielError as error:
        answer, status = service_error(error)
        return JsonResponse(answer, status=status)


def _held_here(body: dict[str, Any]) -> Any:
    """The request's domain, if its mail is held here (a domain that moved meanwhile is
    refused, never served from a stale copy or created here)."""
    from courriel.accounts.models import Domain
    from courriel.cluster.placement import is_here

    domain = Domain.objects.filter(name=str(body.get("domain", ""))).first()
    if domain is None or not is_here(domain.server_id):
        raise _Refused("that domain's mail is not held here", 409)
    return domain


@node_only
def restore(request: HttpRequest, caller: str, body: dict[str, Any]) -> HttpResponse:
    """A restore of mail held here, asked through another node's panel, API or CLI."""
    from courriel.backup.restore import restore_mail

    domain = _held_here(body).name
    options = body.get("options")
    allowed = {"login", "folder", "message", "snapshot", "in_place"}
    if not isinstance(options, dict) or not set(options) <= allowed:
        raise _Refused(f"options: some of {sorted(allowed)}", 400)
    if not all(v is None or isinstance(v, str | bool) for v in options.values()):
        raise _Refused("options: text, true/false or null", 400)
    return _service(lambda actor: restore_mail(actor, domain, **options).as_dict(), body)


@node_only
def snapshots(request: HttpRequest, caller: str, body: dict[str, Any]) -> HttpResponse:
    """The snapshots here of a domain held here, as the person asking may see them."""
    from courriel.backup.services import list_snapshots

    domain = _held_here(body)
    return _service(lambda actor: list_snapshots(actor, domain), body)
