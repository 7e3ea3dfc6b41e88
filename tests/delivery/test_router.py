"""The router in-process: all-or-nothing storage, loops, quota deferral."""

from __future__ import annotations

import pytest

from courriel.accounts.resolution import resolve
from courriel.delivery import router
from courriel.delivery.router import Incoming, TemporaryFailure, accept
from courriel.outbound.spool import get_spool
from tests.fixtures.accounts import Customer

MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"


def incoming(*recipients: str, content: bytes = MESSAGE) -> Incoming:
    return Incoming(
        sender="a@example.org",
        recipients=list(recipients),
        resolutions=[resolve(r) for r in recipients],
        content=content,
    )


def stored(box) -> list:
    path = router.maildir_of(box)
    return list((path / "new").iterdir())


def test_a_full_disk_leaves_nothing_anywhere(two_boxes, monsite: Customer, monkeypatch) -> None:
    from courriel.accounts.services.mailboxes import set_forwarding
    from courriel.delivery.journal import Journal

    one, two = two_boxes
    set_forwarding(monsite.actor, two, ["two@gmail.com"], keep=True)

    def disk_full(self, record):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Journal, "commit", disk_full)
    with pytest.raises(TemporaryFailure) as failure:
        accept(incoming("one@monsite.be", "two@monsite.be"))
    assert failure.value.outcome.reply().startswith("452 4.3.1")
    assert stored(one) == [] and stored(two) == []
    assert list(get_spool().entries()) == []  # the forward queued first was taken back


def test_loops_are_refused(two_boxes) -> None:
    looping = b"Delivered-To: one@monsite.be\r\n" + MESSAGE
    [outcome] = accept(incoming("one@monsite.be", content=looping))
    assert outcome.reply() == "554 5.4.6 Mail forwarding loop for <one@monsite.be>"
    hops = b"".join(b"Received: from x by y; date\r\n" for _ in range(31)) + MESSAGE
    [outcome] = accept(incoming("two@monsite.be", content=hops))
    assert outcome.code == 554 and outcome.enhanced == "5.4.6"
    assert stored(two_boxes[0]) == [] and stored(two_boxes[1]) == []


def test_a_full_mailbox_gets_its_copy_queued_for_later(two_boxes, monsite: Customer) -> None:
    from courriel.accounts.services.mailboxes import modify_mailbox

    one = two_boxes[0]
    modify_mailbox(monsite.actor, one, quota=400)
    assert accept(incoming("one@monsite.be"))[0].code == 250
    assert len(stored(one)) == 1
    [outcome] = accept(incoming("one@monsite.be"))  # no room left, but not too big
    assert outcome.code == 250  # acknowledged: it waits in the queue, not lost
    [entry] = [e for e in get_spool().entries() if e.kind == "local"]
    assert entry.recipients[0].mailbox_id == one.pk
    assert len(stored(one)) == 1
    [outcome] = accept(incoming("one@monsite.be", content=MESSAGE * 10))
    assert outcome.reply() == "552 5.2.2 Message too big for the mailbox quota"


def test_only_a_mailbox_with_a_quota_asks_the_journal_for_its_warnings_hook(
    two_boxes, monsite: Customer, monkeypatch
) -> None:
    """The journal wakes its thread for the quota warnings only when one may be due."""
    from courriel.accounts.services.mailboxes import modify_mailbox
    from courriel.delivery.journal import Journal

    one, two = two_boxes
    modify_mailbox(monsite.actor, one, quota=None)
    modify_mailbox(monsite.actor, two, quota=10_000_000)
    committed = []
    real_commit = Journal.commit

    def commit(self, record):
        committed.append(record.needs_after_apply)
        real_commit(self, record)

    monkeypatch.setattr(Journal, "commit", commit)
    for recipients in (
        ["one@monsite.be"],
        ["two@monsite.be"],
        ["one@monsite.be", "two@monsite.be"],
    ):
        assert [o.code for o in accept(incoming(*recipients))] == [250] * len(recipients)
    assert committed == [False, True, True]
    assert len(stored(one)) == 2 and len(stored(two)) == 2
