"""The durable spool: atomic entries, recovery after a crash between the two writes."""

from __future__ import annotations

import os
import time
from pathlib import Path

from courriel.outbound.spool import Recipient, Spool


def test_enqueue_load_save_remove(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    entry = spool.enqueue(
        "a@example.org",
        ["b@gmail.com", Recipient("c@gmail.com")],
        [b"Subject: x\r\n", b"\r\nbody\r\n"],
        kind="forward",
    )
    loaded = spool.load(entry.id)
    assert loaded is not None and loaded.size == len(b"Subject: x\r\n\r\nbody\r\n")
    assert [r.address for r in loaded.pending] == ["b@gmail.com", "c@gmail.com"]
    loaded.recipients[0].status = "sent"
    spool.save(loaded)
    assert [r.address for r in spool.load(entry.id).pending] == ["c@gmail.com"]  # type: ignore[union-attr]
    assert spool.read_message(entry.id).endswith(b"body\r\n")
    spool.remove(entry.id)
    assert spool.load(entry.id) is None and spool.ids() == []


def test_recover_removes_half_written_entries_only(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    kept = spool.enqueue("a@example.org", ["b@gmail.com"], b"x", kind="relay")
    orphan = spool.msg_dir / "ORPHAN"
    orphan.write_bytes(b"no envelope: the sender never got a 250")
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    (spool.env_dir / "X.json.tmp123").write_text("{")
    assert spool.recover() == 1
    assert not orphan.exists() and spool.load(kept.id) is not None
    assert [p.name for p in spool.env_dir.iterdir()] == [f"{kept.id}.json"]


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(ValueError):
        Spool(tmp_path).enqueue("", ["x@y.z"], b"", kind="spam")


def test_an_update_does_not_bring_back_a_removed_entry(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    entry = spool.enqueue("a@example.org", ["b@gmail.com"], b"x", kind="relay")
    copy = spool.load(entry.id)  # what a delivery attempt works on
    assert copy is not None
    spool.remove(entry.id)  # `courriel queue delete`, meanwhile
    copy.attempts += 1
    assert spool.save(copy) is False
    assert spool.load(entry.id) is None and spool.ids() == []
    assert list(spool.env_dir.iterdir()) == []  # no temporary file left either
