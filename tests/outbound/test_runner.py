"""A delivery attempt and `courriel queue delete` at the same time: the attempt, which
worked on its own copy of the entry, does not bring the deleted entry back."""

from __future__ import annotations

import pytest

from courriel.config import get_config
from courriel.outbound import admin
from courriel.outbound.runner import attempt
from courriel.outbound.spool import get_spool
from tests.fixtures.sink import Sink


@pytest.mark.django_db
def test_an_entry_deleted_during_its_attempt_stays_deleted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink = Sink().start()
    try:
        monkeypatch.setitem(get_config().queue, "transport", [f"*=127.0.0.1:{sink.port}"])
        spool = get_spool()
        message = b"Subject: x\r\n\r\nx\r\n"
        entry = spool.enqueue("info@monsite.be", ["slow@gmail.com"], message, kind="relay")
        deleted: list[int] = []

        def delete_then_defer(address: str) -> str:
            # The remote server is slow to answer; the provider deletes the entry then.
            deleted.append(admin.delete([entry.id]))
            return "451 4.3.0 busy"

        sink.handler.rcpt_reply = delete_then_defer
        attempt(spool, entry.id)
    finally:
        sink.stop()
    assert deleted == [1]
    assert spool.load(entry.id) is None and spool.ids() == []
    assert not spool.message_path(entry.id).exists()
