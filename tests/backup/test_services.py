"""What the panel calls: backups as each actor may see them, restores, downloads."""

from __future__ import annotations

import tracemalloc

import pytest

from courriel.accounts.permissions import Actor
from courriel.backup import services
from courriel.backup.download import open_download
from courriel.backup.policy import BackupPolicy
from courriel.errors import NotFoundError, PermissionDeniedError
from courriel.mailstore.maildir import deliver
from tests.backup.mail import STRONG, message
from tests.fixtures.accounts import Customer
from tests.fixtures.backups import maildir_of


def test_owner_sees_and_restores_only_their_own_mailboxes(
    backed_up: BackupPolicy, monsite: Customer, autre: Customer, provider: Actor
) -> None:
    everything = services.list_snapshots(provider)
    assert everything[0]["mailboxes"] == 2 and "bytes_copied" in everything[0]
    mine = services.list_snapshots(monsite.actor)
    assert mine[0]["mailboxes"] == 1 and "bytes_copied" not in mine[0]
    assert 0 < mine[0]["bytes"] < everything[0]["bytes"]
    with pytest.raises(PermissionDeniedError):
        services.overview(monsite.actor)

    report = services.restore(monsite.actor, "monsite.be", login="monsite")
    assert len(report.restored) == 3
    with pytest.raises(NotFoundError):
        services.restore(monsite.actor, "autresite.be")
    with pytest.raises(NotFoundError):
        services.restore(monsite.actor, "monsite.be", login="autresite")
    with pytest.raises(PermissionDeniedError):
        services.find_dump(monsite.actor, None)
    assert len(services.restore(provider, "autresite.be").restored) == 3


def test_mailbox_user_downloads_only_their_own_mailbox(
    monsite: Customer, autre: Customer, provider: Actor
) -> None:
    from courriel.accounts.services.mailboxes import create_mailbox

    info = create_mailbox(provider, monsite.domain, real_name="Info", password=STRONG).mailbox
    user = Actor.for_mailbox(info)
    deliver(maildir_of(info.login, "monsite.be"), message(1), durable=False)
    own = open_download(user, info.login, "mbox")
    assert b"Subject: message 1" in b"".join(own.chunks)
    assert own.filename.startswith(info.login) and own.content_type == "application/mbox"
    with pytest.raises(NotFoundError):
        open_download(user, "monsite", "mbox")  # the owner's mailbox, same domain
    with pytest.raises(NotFoundError):
        services.restore(user, "monsite.be", login=info.login)
    # The owner downloads their domain's mailboxes, not another customer's.
    assert open_download(monsite.actor, info.login, "maildir").filename.endswith(".tar.gz")
    with pytest.raises(NotFoundError):
        open_download(monsite.actor, "autresite", "mbox")
    assert open_download(provider, "autresite", "mbox", domain="autresite.be")


def test_download_memory_stays_flat_with_a_large_mailbox(monsite: Customer) -> None:
    maildir = maildir_of("monsite", "monsite.be")
    for n in range(40):
        deliver(maildir, message(n, size=1024 * 1024), durable=False)  # 40 MB
    deliver(maildir, b"Subject: big\r\n\r\n" + b"y" * (24 * 1024 * 1024), durable=False)
    for fmt in ("mbox", "maildir"):
        download = open_download(monsite.actor, "monsite", fmt)
        tracemalloc.start()
        total = 0
        for chunk in download.chunks:
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert total > (64 * 1024 * 1024 if fmt == "mbox" else 50 * 1024)
        assert peak < 2 * 1024 * 1024, f"{fmt}: {peak:,} bytes at peak for a 64 MB mailbox"
