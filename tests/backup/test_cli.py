"""Chapter 12 with the real `courriel` command: back up, list, verify, restore."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from courriel.mailstore import quota
from tests.backup.mail import INFO, customer, live, message
from tests.fixtures.processes import Courriel


def test_backup_list_verify_and_restore_a_mailbox(courriel: Courriel) -> None:
    maildir = customer(courriel)
    first = courriel("backup", "run", "--json").json
    assert first["snapshot"] == "daily.0" and first["files_copied"] >= 4
    on_postgresql = bool(courriel.env.get("COURRIEL_DATABASE_URL"))
    assert first["database_dump"].endswith(".pgdump" if on_postgresql else ".sqlite3")

    # A client reads a message (flag rename) and another arrives: only the new one is copied.
    inbox = sorted((maildir / "new").iterdir())
    os.rename(inbox[0], maildir / "cur" / (inbox[0].name + ":2,S"))
    from courriel.mailstore.maildir import deliver

    deliver(maildir, message(3))
    second = courriel("backup", "run", "--json").json
    assert second["files_linked"] >= 4
    assert second["bytes_copied"] < len(message(3)) + 200  # the new message and maildirsize
    backups = courriel.data / "backups"
    renamed = backups / "daily.0" / "mail" / INFO / "cur" / (inbox[0].name + ":2,S")
    assert (
        renamed.stat().st_ino
        == (backups / "daily.1" / "mail" / INFO / "new" / inbox[0].name).stat().st_ino
    )

    listed = courriel("backup", "list", "--json").json
    assert [s["name"] for s in listed["snapshots"]] == ["daily.0", "daily.1"]
    assert listed["snapshots"][0]["mailboxes"] == 2  # the owner's and Info's
    assert listed["status"]["ok"] is True and "linked" in listed["status"]["message"]
    text = courriel("backup", "list").out
    assert "Last backup:" in text and "OK" in text and "daily.1" in text

    verified = courriel("backup", "verify").out
    assert (
        "OK: the snapshot restores completely" in verified and "1 domains, 2 mailboxes" in verified
    )

    # Info deletes two messages and the Sent one; restore the mailbox from yesterday.
    kept = live(maildir)
    gone = [
        p for p in maildir.rglob("*,S=*") if b"<m0@" in p.read_bytes() or b"<m1@" in p.read_bytes()
    ]
    for path in [*gone, *(maildir / ".Sent" / "cur").iterdir()]:
        size = path.stat().st_size
        path.unlink()
        quota.add(maildir, -size, -1)  # as an IMAP expunge does
    before = live(maildir)
    out = courriel(
        "backup", "restore", "monsite.be", "--user", "monsite0001", "--snapshot", "daily.1"
    ).out
    assert "Restored 4 messages" in out
    day = listed["snapshots"][1]["taken_at"][:10]
    restored = maildir / f".Restored {day}"
    assert len(list((restored / "new").iterdir())) == 3
    assert len(list((maildir / f".Restored {day}.Sent" / "cur").iterdir())) == 1
    assert {p.read_bytes() for p in (restored / "new").iterdir()} == {message(n) for n in range(3)}
    assert all(live(maildir)[k] == v for k, v in before.items())  # nothing overwritten
    assert f"Restored {day}" in (maildir / "subscriptions").read_text()
    # Running it again restores nothing: everything is already there.
    again = courriel(
        "backup", "restore", "monsite.be", "--user", "monsite0001", "--snapshot", "daily.1"
    )
    assert "Restored 0 messages" in again.out and "4 messages were already there" in again.out

    # One message by Message-ID, back where it was, with its date.
    one = courriel(
        "backup",
        "restore",
        "monsite.be",
        "--user",
        "monsite0001",
        "--message",
        "<m1@b.be>",
        "--in-place",
        "--json",
    ).json
    assert len(one["restored"]) == 1 and one["restored"][0]["folder"] == "INBOX"
    assert sorted(kept.values()) != sorted(live(maildir).values())
    assert quota.usage(maildir) == quota.scan(maildir)
    missing = courriel(
        "backup", "restore", "monsite.be", "--user", "monsite0001", "--message", "nope@x", ok=False
    )
    assert missing.code == 66 and "No message 'nope@x'" in missing.err


def test_restore_a_whole_domain_and_one_folder(courriel: Courriel) -> None:
    maildir = customer(courriel)
    courriel("backup", "run")
    for path in (maildir / ".Sent" / "cur").iterdir():
        path.unlink()
    out = courriel("backup", "restore", "monsite.be", "--folder", "Sent", "--in-place").out
    assert "Restored 1 messages" in out
    assert len(list((maildir / ".Sent" / "cur").iterdir())) == 1
    whole = courriel("backup", "restore", "monsite.be", "--in-place", "--json").json
    assert whole["restored"] == [] and whole["already_present"] == 4
    # One message by its file name (flags or not), as a customer reads it in a listing.
    lost = sorted((maildir / "new").iterdir())[0]
    content = lost.read_bytes()
    lost.unlink()
    by_name = courriel(
        "backup",
        "restore",
        "monsite.be",
        "--user",
        "monsite0001",
        "--message",
        lost.name,
        "--json",
    ).json
    assert len(by_name["restored"]) == 1
    (restored,) = maildir.glob(".Restored */new/" + by_name["restored"][0]["file"])
    assert restored.read_bytes() == content


def test_rotation_through_the_cli(courriel: Courriel) -> None:
    customer(courriel, messages=1)
    for _ in range(9):
        courriel("backup", "run")
    names = [s["name"] for s in courriel("backup", "list", "--json").json["snapshots"]]
    # Eight runs filled daily.0-6 and promoted the oldest to weekly.0; the ninth run's
    # oldest daily is the same day as weekly.0, so it is dropped.
    assert names == [f"daily.{i}" for i in range(7)] + ["weekly.0"]
    dumps = courriel("backup", "list", "--json").json["database_dumps"]
    assert len(dumps) == 9  # kept 31 days


def test_a_second_run_waits_for_the_first(courriel: Courriel) -> None:
    customer(courriel, messages=1)
    courriel("backup", "run")
    fd = os.open(courriel.data / "backups" / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.pwrite(fd, b"pid 4242 since 2024-05-01 03:30:00", 0)
        busy = courriel("backup", "run", ok=False)
    finally:
        os.close(fd)
    assert "Another backup is running (pid 4242" in busy.err
    assert [s["name"] for s in courriel("backup", "list", "--json").json["snapshots"]] == [
        "daily.0"
    ]


def test_corrupted_snapshot_file_is_found_and_copied_afresh(courriel: Courriel) -> None:
    maildir = customer(courriel)
    courriel("backup", "run")
    victim = sorted((courriel.data / "backups" / "daily.0" / "mail" / INFO / "new").iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x20  # one bit, same size: only a checksum sees it
    victim.write_bytes(bytes(data))
    bad = courriel("backup", "verify", ok=False)
    assert bad.code == 65
    assert f"DAMAGED {INFO}/new/{victim.name}: content differs" in bad.out
    assert "does not restore cleanly (1 damaged files)" in bad.err
    report = courriel("backup", "verify", "--json", ok=False).json
    assert report["ok"] is False and len(report["damaged"]) == 1
    # The next backup does not link to the damaged copy: it copies the live message.
    courriel("backup", "run")
    fresh = courriel.data / "backups" / "daily.0" / "mail" / INFO / "new" / victim.name
    assert fresh.read_bytes() == (maildir / "new" / victim.name).read_bytes()
    assert "OK" in courriel("backup", "verify", "daily.0").out
    assert courriel("backup", "verify", "daily.1", ok=False).code == 65


def test_restore_into_a_mailbox_over_quota(courriel: Courriel) -> None:
    maildir = customer(courriel, messages=0)
    from courriel.mailstore.maildir import deliver

    for n in range(3):
        deliver(maildir, message(n, size=300 * 1024))
    courriel("user", "modify", "monsite.be", "monsite0001", "--quota", "1M")
    courriel("backup", "run")
    for path in (maildir / "new").iterdir():
        path.unlink()
    quota.recalculate(maildir)
    for n in range(10, 12):
        deliver(maildir, message(n, size=300 * 1024))  # 600 kB used of 1 MB
    before = live(maildir)
    full = courriel("backup", "restore", "monsite.be", "--user", "monsite0001", ok=False)
    assert full.code == 65
    assert "Nothing was restored: the restore does not fit in the quota" in full.err
    assert "monsite0001 would need 900 kB more but uses 600 kB of its 1 MB quota" in full.err
    assert live(maildir) == before and not list(maildir.glob(".Restored*"))
    # One message fits.
    name = next(iter(json.loads(courriel("backup", "list", "--json").out)["snapshots"]))["name"]
    one = courriel(
        "backup",
        "restore",
        "monsite.be",
        "--user",
        "monsite0001",
        "--message",
        "m1@b.be",
        "--snapshot",
        name,
    )
    assert "Restored 1 messages" in one.out


def test_database_restore_asks_for_confirmation(courriel: Courriel) -> None:
    customer(courriel, messages=1)
    courriel("backup", "run")
    courriel("user", "delete", "monsite.be", "monsite0001", "--yes")
    assert "monsite0001" not in courriel("user", "list", "monsite.be").out
    refused = courriel("backup", "restore", "--database", ok=False)
    assert "Add --yes to confirm" in refused.err
    out = courriel("backup", "restore", "--database", "--yes").out
    assert "Database restored from courriel-" in out and "previous one was saved as" in out
    assert "monsite0001" in courriel("user", "list", "monsite.be").out
    assert len(courriel("backup", "list", "--json").json["database_dumps"]) == 2
    audit = courriel("audit", "--json").json
    assert any(e["action"] == "backup.restore_database" for e in audit)


def test_download_a_mailbox_as_mbox_and_maildir_archive(courriel: Courriel, tmp_path: Path) -> None:
    import mailbox
    import subprocess

    maildir = customer(courriel)
    out = tmp_path / "info.mbox"
    courriel("backup", "download", "monsite.be", "monsite0001", "-o", str(out))
    box = mailbox.mbox(out)
    subjects = sorted(m["Subject"] for m in box)
    assert subjects == ["message 0", "message 1", "message 100", "message 2"]
    first = next(m for m in box if m["Subject"] == "message 0")
    assert first.get_payload().startswith(">From the start")  # mboxrd quoting
    assert first["X-Folder"] == "INBOX" and first["Status"] == "O"
    archive = tmp_path / "info.tar.gz"
    courriel(
        "backup", "download", "monsite.be", "monsite0001", "--format", "maildir", "-o", str(archive)
    )
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(tmp_path)], check=True)
    assert live(tmp_path / "monsite0001" / "Maildir") == live(maildir)
    assert (tmp_path / "monsite0001" / "Maildir" / ".Sent" / "maildirfolder").exists()
    other = courriel("backup", "download", "autre.be", "monsite0001", ok=False)
    assert other.code == 66


def test_progress_bar_on_a_terminal_only(courriel: Courriel) -> None:
    import pty
    import subprocess
    import sys

    customer(courriel)
    courriel("backup", "run")  # so the second run knows how many files to expect
    main, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "courriel", "backup", "run"],
            env=courriel.env,
            stdout=subprocess.PIPE,
            stderr=secondary,
            timeout=60,
        )
        os.close(secondary)
        drawn = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(main)
    assert done.returncode == 0
    assert b"\r[" in drawn and b"files," in drawn and b"linked" in drawn
    assert b"\r" not in done.stdout and b"backup daily.0:" in done.stdout
    assert "\r" not in courriel("backup", "run").err  # not a terminal: no bar
