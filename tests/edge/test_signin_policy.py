"""The sign-in policy service the edge's Dovecot asks (`/edge/signin-policy`), as an
outsider or a broken client would call it: no key, a wrong key, garbage; and as
Dovecot does, counting failures like Courriel's own doors."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from courriel.config import get_config
from courriel.edge.signin_policy import HEADER, ensure_key

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/edge/signin-policy"


def _post(client: Client, body: object, key: str | None, command: str = "allow") -> object:
    headers = {HEADER: key} if key is not None else {}
    return client.post(
        f"{URL}?command={command}",
        data=body if isinstance(body, bytes) else json.dumps(body),
        content_type="application/json",
        headers=headers,
        secure=True,
    )


def test_only_the_key_holder_is_answered() -> None:
    key = ensure_key(get_config(), -1)
    client = Client()
    attempt = {"login": "monsite0001", "remote": "203.0.113.9", "pwhash": "ab", "protocol": "imap"}
    for wrong in (None, "", "not-the-key", key + "x"):
        answer = _post(client, attempt, wrong)
        assert answer.status_code == 403 and b"status" not in answer.content
    assert client.get(URL, headers={HEADER: key}, secure=True).status_code == 405
    for garbage in (b"not json", b"[1, 2]", b"\xff\xfe"):
        assert _post(client, garbage, key).status_code == 400
    assert json.loads(_post(client, attempt, key).content) == {"status": 0, "msg": ""}


def test_failures_reported_by_dovecot_are_counted_as_courriels_own() -> None:
    key = ensure_key(get_config(), -1)
    client = Client()
    outsider = {"login": "someone", "remote": "203.0.113.10", "protocol": "pop3"}
    for n in range(5):
        failed = outsider | {"pwhash": f"guess{n}", "success": False, "policy_reject": False}
        assert _post(client, failed, key, "report").status_code == 200
    refused = json.loads(_post(client, outsider | {"pwhash": "right"}, key).content)
    assert refused["status"] == -1 and "Too many failed logins" in refused["msg"]
    elsewhere = outsider | {"remote": "198.51.100.10", "pwhash": "right"}
    assert json.loads(_post(client, elsewhere, key).content)["status"] == 0
