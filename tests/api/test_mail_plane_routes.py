"""The API's routes onto the mail plane and the backups: the account e-mail, where the
set-up mail went, the DNS records to publish, and mailbox downloads."""

from __future__ import annotations

import io
import mailbox
import tarfile
from pathlib import Path
from typing import Any

from courriel.accounts.models import Mailbox
from courriel.mailstore.maildir import deliver
from tests.backup.mail import message
from tests.fixtures.accounts import STRONG, Customer
from tests.fixtures.api import Api
from tests.fixtures.backups import maildir_of
from tests.panel.test_account_mail import notices


def test_new_and_updated_account_mail(
    owner_api: Api, monsite: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        status, created = owner_api.post(
            "/domains/monsite.be/mailboxes",
            {"real_name": "Info", "password": STRONG, "send_account_mail_to": "mailbox"},
        )
    assert status == 201 and created["account_mail_sent_to"] == "monsite0001@monsite.be"
    status, sent = owner_api.post(
        "/domains/monsite.be/mailboxes/monsite0001/account-mail", {"to": "Info@Gmail.com"}
    )
    assert status == 200 and sent == {"sent_to": "info@gmail.com"}
    assert [recipients for recipients, _ in notices()] == [
        ["monsite0001@monsite.be"],
        ["info@gmail.com"],
    ]
    status, refused = owner_api.post(
        "/domains/monsite.be/mailboxes/monsite0001/account-mail", {"to": "nope"}
    )
    assert status == 400 and refused["field"] == "send_account_mail_to"
    status, none = owner_api.post(
        "/domains/monsite.be/mailboxes", {"password": STRONG, "send_account_mail_to": "x@"}
    )
    assert status == 400 and none["field"] == "send_account_mail_to"
    assert not Mailbox.objects.filter(login="monsite0002").exists()


def test_the_set_up_answer_says_where_it_was_mailed(
    provider_api: Api, servers: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _, created = provider_api.post(
            "/domains",
            {"name": "monsite.be", "plan": "recommended", "contact_email": "monsite@gmail.com"},
        )
        _, silent = provider_api.post("/domains", {"name": "autre.be", "plan": "simple"})
    assert created["setup_mail_sent_to"] == "monsite@gmail.com"
    assert silent["setup_mail_sent_to"] is None and silent["setup_mail_withheld"] is None
    assert [recipients for recipients, _ in notices()] == [["monsite@gmail.com"]]


def test_dns_records(owner_api: Api, monsite: Customer) -> None:
    status, records = owner_api.get("/domains/monsite.be/dns")
    assert status == 200
    kinds = {(r["name"], r["type"]) for r in records}
    assert ("monsite.be", "MX") in kinds and ("_dmarc.monsite.be", "TXT") in kinds
    dkim = next(r for r in records if "_domainkey" in r["name"])
    assert dkim["value"].startswith("v=DKIM1; k=rsa; p=")
    assert dkim["zone_line"].startswith("courriel._domainkey.monsite.be. 3600 IN TXT ")
    assert owner_api.get("/domains/autresite.be/dns")[0] == 404


def raw(api: Api, path: str) -> Any:
    return api.client.get("/api/v1" + path, secure=True, **api.headers)


def test_downloads(owner_api: Api, info_api: Api, info: Mailbox, tmp_path: Path) -> None:
    deliver(maildir_of(info.login, "monsite.be"), message(1), durable=False)
    mine = raw(info_api, "/me/download")
    assert mine.status_code == 200 and mine["Content-Type"] == "application/mbox"
    (tmp_path / "m.mbox").write_bytes(b"".join(mine.streaming_content))
    assert [m["Subject"] for m in mailbox.mbox(tmp_path / "m.mbox")] == ["message 1"]
    archive = raw(owner_api, "/domains/monsite.be/mailboxes/monsite0001/download?format=maildir")
    assert archive.status_code == 200 and archive["Content-Type"] == "application/gzip"
    data = b"".join(archive.streaming_content)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert any("/new/" in name for name in tar.getnames())
    assert raw(owner_api, "/me/download?format=zip").status_code == 422
    assert raw(info_api, "/domains/monsite.be/mailboxes/monsite/download").status_code == 404
