"""Courriel's sign-in throttle for the edge's Dovecot: Dovecot's authentication policy
service (`auth_policy_server_url`) asks here before it checks a password and reports
here after, so that IMAP and POP3 through Dovecot are throttled by the very rules of
`courriel.accounts.throttle` (per login and address; an address that signed in before
still gets in; the same wrong password counted once), with the same records, whichever
door the attempts come through.

Dovecot sends, as JSON: `login` (what the client typed), `remote` (its address),
`protocol`, and `pwhash`, a hash of the password keyed with a secret nonce (never the
password): it stands for the password in the throttle's "same wrong password again".
The answer is `{"status": 0}` (go on), a positive number of seconds to wait first
(a slowed-down login), or -1 with a message (refused for now).

Requests must carry the key of `<data>/edge/signin-policy.key` (written with the
Dovecot configuration); anything else gets 403.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import math
import os
import secrets
from pathlib import Path
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from courriel.config import Config, get_config

HEADER = "X-Courriel-Policy-Key"


def key_path(config: Config) -> Path:
    return config.data_dir / "edge" / "signin-policy.key"


def ensure_key(config: Config, gid: int) -> str:
    """The shared key (made once): readable by root and the service user's group."""
    path = key_path(config)
    if path.exists():
        return path.read_text().strip()  # Dovecot's settings and Courriel's stay a pair
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    for made, mode in ((path.parent, 0o750), (path, 0o640)):
        os.chmod(made, mode)  # whatever the umask
        with contextlib.suppress(PermissionError):
            os.chown(made, -1, gid)
    return key


def _authorised(request: HttpRequest) -> bool:
    path = key_path(get_config())
    try:
        expected = path.read_text().strip()
    except OSError:
        return False
    given = request.headers.get(HEADER, "").strip()
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def decide(fields: dict[str, Any]) -> dict[str, Any]:
    """Before the password is checked: go on, wait, or refused for now. (The same wrong
    password again goes on: Dovecot finds it wrong, and the throttle counts it once.)"""
    from courriel.accounts.signin import identify, throttled_message
    from courriel.accounts.throttle import throttle

    login, mailbox = identify(str(fields.get("login", "")), _door(fields))
    changed_at = mailbox.password_changed_at if mailbox is not None else None
    verdict = throttle.check(
        login, _address(fields), str(fields.get("pwhash", "")), changed_at=changed_at
    )
    if verdict.wait:
        return {"status": -1, "msg": throttled_message(verdict.wait)}
    if verdict.delay:
        return {"status": max(1, math.ceil(verdict.delay)), "msg": ""}
    return {"status": 0, "msg": ""}


def report(fields: dict[str, Any]) -> None:
    """After Dovecot checked the password: counted as Courriel counts its own doors."""
    from courriel.accounts.signin import identify
    from courriel.accounts.throttle import throttle

    if fields.get("policy_reject") is True:
        return  # refused here before any check: nothing new to count
    door = _door(fields)
    login, _mailbox = identify(str(fields.get("login", "")), door)
    address = _address(fields)
    if fields.get("success") is True:
        throttle.succeeded(login, address, pair_failures=1)
    else:
        throttle.failed(login, address, str(fields.get("pwhash", "")), door)


def _door(fields: dict[str, Any]) -> Any:
    from courriel.accounts.signin import Door

    return Door.POP3 if str(fields.get("protocol", "")).lower() == "pop3" else Door.IMAP


def _address(fields: dict[str, Any]) -> str:
    return str(fields.get("remote", ""))[:64] or "unknown"


@csrf_exempt
@require_POST
def signin_policy(request: HttpRequest) -> HttpResponse:
    if not _authorised(request):
        return JsonResponse({"detail": "not Courriel's Dovecot"}, status=403)
    try:
        fields = json.loads(request.body or b"{}")
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        return JsonResponse({"detail": "body is not a JSON object"}, status=400)
    if request.GET.get("command") == "report":
        report(fields)
        return JsonResponse({})
    return JsonResponse(decide(fields))
