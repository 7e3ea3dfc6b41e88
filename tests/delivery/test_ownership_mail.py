"""Issue 11, item 1 end to end: with a real `courriel serve`, monsite's owner claims
gmail.com (a sub-server with a catch-all) and outlook.com (a domain alias) through the
API; another customer's mail to those domains still leaves for the real providers
(here the test's sink), and nothing lands in monsite's Maildir, until the provider
approves the names."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from tests.fixtures.platform import STRONG, Platform, insecure_context, message, private_platform


def api(platform: Platform, token: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{platform.served.web_url}/api/v1{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=insecure_context(), timeout=30) as answer:
        return json.loads(answer.read() or b"null")


def test_a_pending_claim_captures_nobodys_mail(tmp_path: Path) -> None:
    with private_platform(tmp_path) as platform:
        c = platform.courriel
        c("domain", "create", "autre.be", "--plan", "simple")
        c("user", "create", "autre.be", "--pass", STRONG, "--extra", "ventes")
        token = (
            c("token", "create", "--login", "monsite", "--name", "site").out.splitlines()[1].strip()
        )
        created = api(
            platform, token, "POST", "/domains", {"name": "gmail.com", "parent": "monsite.be"}
        )
        assert created["domain"]["verified"] is False
        api(
            platform,
            token,
            "POST",
            "/domains/gmail.com/aliases",
            {"name": "*", "mailboxes": ["monsite"]},
        )
        api(platform, token, "POST", "/domains/monsite.be/domain-aliases", {"name": "outlook.com"})
        assert "not a domain hosted here" in c("resolve", "postmaster@outlook.com", ok=False).out
        assert "not a domain hosted here" in c("resolve", "anyone@gmail.com", ok=False).out

        recipients = ["ceo@gmail.com", "postmaster@outlook.com", "ceo@outlook.com"]
        with platform.submission("autre0001") as client:
            client.sendmail(
                "ventes@autre.be",
                recipients,
                message("ventes@autre.be", recipients, "for the real providers"),
            )
        sent = platform.sink.wait_for(2, where=lambda m: b"for the real providers" in m.content)
        assert sorted(r for m in sent for r in m.recipients) == sorted(recipients)
        assert platform.messages("monsite") == []

        # Once the provider approves them, the names are monsite's, at once.
        c("domain", "approve", "gmail.com")
        c("domain", "approve", "outlook.com")
        with platform.submission("autre0001") as client:
            client.sendmail(
                "ventes@autre.be",
                ["ceo@gmail.com"],
                message("ventes@autre.be", ["ceo@gmail.com"], "now local"),
            )
        platform.wait_message("monsite", b"now local")
