"""The snapshot engine: unchanged and renamed messages are hard links, new ones copied,
and a mailbox that changes while the snapshot runs is captured consistently."""

from __future__ import annotations

import os
from pathlib import Path

from courriel.backup import manifest
from courriel.backup.snapshot import take_snapshot
from courriel.mailstore.layout import create_maildir
from courriel.mailstore.maildir import deliver

MAILDIR = "monsite.be/homes/monsite0001/Maildir"


def message(n: int) -> bytes:
    return f"From: a@b.be\r\nMessage-ID: <{n}@b.be>\r\n\r\nbody {n}\r\n".encode() * (n + 1)


def mail_root(tmp_path: Path, count: int = 5) -> tuple[Path, Path]:
    root = tmp_path / "mail"
    maildir = root / MAILDIR
    create_maildir(maildir)
    for n in range(count):
        deliver(maildir, message(n), durable=False)
    (maildir / "tmp" / "half-written").write_bytes(b"partial")
    return root, maildir


def files(tree: Path) -> dict[str, Path]:
    return {str(p.relative_to(tree)): p for p in tree.rglob("*") if p.is_file()}


def test_unchanged_and_renamed_messages_are_links_new_ones_copies(tmp_path: Path) -> None:
    root, maildir = mail_root(tmp_path)
    first, totals = take_snapshot(root, tmp_path / "s1")
    # messages, maildirsize, maildirfolder markers, subscriptions
    assert totals.copied_files == 5 + 1 + 4 + 1
    assert not any("tmp/half-written" in p for p in files(tmp_path / "s1"))
    manifest.write(tmp_path, "s1", None, 0, first)
    assert manifest.load(tmp_path, "s1").file_count == 11

    # A client reads one message (new/X -> cur/X:2,S), another arrives.
    seen = sorted((maildir / "new").iterdir())[0]
    os.rename(seen, maildir / "cur" / (seen.name + ":2,S"))
    deliver(maildir, message(9), durable=False)
    second, totals = take_snapshot(root, tmp_path / "s2", tmp_path / "s1")
    assert totals.copied_files == 2  # the new message and maildirsize (it changed)
    assert totals.linked_files == 5 + 4 + 1
    renamed = tmp_path / "s2" / MAILDIR / "cur" / (seen.name + ":2,S")
    original = tmp_path / "s1" / MAILDIR / "new" / seen.name
    assert renamed.stat().st_ino == original.stat().st_ino  # no copy of the data
    assert renamed.read_bytes() == original.read_bytes()
    # The manifest of the second snapshot is a delta (2 copied, 1 linked under its new
    # name, 2 names gone: the renamed one's and the replaced maildirsize) and describes
    # the snapshot exactly.
    assert sum(len(lines) for lines in second.dirs.values()) == 5
    manifest.write(tmp_path, "s2", "s1", 1, second)
    listed = {os.fsdecode(e.path): e for e in manifest.load(tmp_path, "s2").entries()}
    assert set(listed) == set(files(tmp_path / "s2"))
    assert listed[str(renamed.relative_to(tmp_path / "s2"))].size == original.stat().st_size
    assert manifest.chain(tmp_path, "s2") == ["s1", "s2"]


def test_mailbox_changing_during_the_snapshot(tmp_path: Path) -> None:
    root, maildir = mail_root(tmp_path)
    names = sorted(p.name for p in (maildir / "new").iterdir())
    live_before = {p.name: p.read_bytes() for p in (maildir / "new").iterdir()}
    changed = []

    def meddle(_totals: object, rel: bytes) -> None:
        # Right after `new/` was listed, before its files are copied.
        if rel.endswith(b"Maildir/new") and not changed:
            changed.append(True)
            os.rename(maildir / "new" / names[0], maildir / "cur" / (names[0] + ":2,S"))
            os.unlink(maildir / "new" / names[1])
            deliver(maildir, message(7), durable=False)

    _, totals = take_snapshot(root, tmp_path / "s1", progress=meddle, workers=1)
    snap = tmp_path / "s1" / MAILDIR
    taken = [p.name for p in (snap / "cur").iterdir()] + [p.name for p in (snap / "new").iterdir()]
    # The flagged message is there once, under its new name; the deleted one is not.
    assert [n for n in taken if n.startswith(names[0].split(",")[0])] == [names[0] + ":2,S"]
    assert not [n for n in taken if n.startswith(names[1])]
    assert totals.vanished == 1
    for name in names[2:]:
        assert (snap / "new" / name).read_bytes() == live_before[name]
    # Live mail is untouched by the backup (only the test's own changes happened).
    assert (maildir / "cur" / (names[0] + ":2,S")).read_bytes() == live_before[names[0]]


def test_flag_change_during_a_linked_snapshot_is_not_stored_twice(tmp_path: Path) -> None:
    root, maildir = mail_root(tmp_path)
    take_snapshot(root, tmp_path / "s1")
    name = sorted(p.name for p in (maildir / "new").iterdir())[0]

    def meddle(_totals: object, rel: bytes) -> None:
        if rel.endswith(b"Maildir/new") and (maildir / "new" / name).exists():
            # new/ was listed with it; cur/ will be listed with it too, renamed.
            os.rename(maildir / "new" / name, maildir / "cur" / (name + ":2,RS"))

    _, totals = take_snapshot(root, tmp_path / "s2", tmp_path / "s1", progress=meddle, workers=1)
    snap = tmp_path / "s2" / MAILDIR
    copies = list(snap.rglob(name.split(":")[0] + "*"))
    assert len(copies) == 1
    assert copies[0].stat().st_ino == (tmp_path / "s1" / MAILDIR / "new" / name).stat().st_ino
    # + maildirsize, subscriptions
    assert totals.linked_files == 5 + 4 + 1 + 1 and totals.vanished == 0
