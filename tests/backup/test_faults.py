"""Faults: the backup disk fills up, is missing or vanishes mid-run, a run is killed.
Each gives a clear message and leaves live mail and earlier snapshots alone."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.mailstore.maildir import deliver
from tests.backup.mail import INFO, customer, live, message
from tests.fixtures.processes import Courriel
from tests.fixtures.waiting import wait_until


def digest(tree: Path) -> str:
    """Content and names of a snapshot's mail tree."""
    hashed = hashlib.sha256()
    for path in sorted(tree.rglob("*")):
        hashed.update(str(path.relative_to(tree)).encode())
        if path.is_file():
            hashed.update(path.read_bytes())
    return hashed.hexdigest()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MB file system (tmpfs) as the backup disk."""
    mount = tmp_path / "backup-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_backup_disk_full(courriel: Courriel, small_disk: Path) -> None:
    courriel.env["COURRIEL_BACKUP_DIRECTORY"] = str(small_disk)
    maildir = customer(courriel)
    courriel("backup", "run")
    snapshot = digest(small_disk / "daily.0" / "mail")
    for n in range(10, 20):
        deliver(maildir, message(n, size=300 * 1024))  # 3 MB: more than the disk
    before = live(maildir)
    full = courriel("backup", "run", ok=False)
    assert full.code == 75
    assert "The backup disk is full (No space left on device)" in full.err
    assert "earlier snapshots are intact" in full.err
    assert live(maildir) == before
    assert sorted(os.listdir(small_disk)) == [
        ".lock",
        ".readers",
        "daily.0",
        "database",
        "manifests",
    ]
    assert digest(small_disk / "daily.0" / "mail") == snapshot
    assert "OK" in courriel("backup", "verify").out
    listed = courriel("backup", "list", "--json").json
    assert listed["status"]["ok"] is False and "disk is full" in listed["status"]["message"]
    assert "FAILED" in courriel("backup", "list").out
    assert any(e["action"] == "backup.failed" for e in courriel("audit", "--json").json)
    assert len(os.listdir(small_disk / "database")) == 2  # the failed run's dump is gone
    # Space is freed: the next run completes.
    for path in (maildir / "new").iterdir():
        if path.stat().st_size > 100 * 1024:
            path.unlink()
    courriel("backup", "run")
    assert [s["name"] for s in courriel("backup", "list", "--json").json["snapshots"]] == [
        "daily.0",
        "daily.1",
    ]


def test_backup_disk_missing(courriel: Courriel, tmp_path: Path) -> None:
    customer(courriel)
    courriel.env["COURRIEL_BACKUP_DIRECTORY"] = str(tmp_path / "not-mounted")
    missing = courriel("backup", "run", ok=False)
    assert missing.code == 75
    assert "does not exist: is the backup disk mounted?" in missing.err
    assert not (tmp_path / "not-mounted").exists()  # never written onto the system disk


def backup_workers(courriel: Courriel) -> list[int]:
    """Pids of the worker processes of a `backup run` on this test's data."""
    mine = f"COURRIEL_DATA={courriel.env['COURRIEL_DATA']}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"spawn_main" in command and mine in environment:
            found.append(int(entry.name))
    return found


def run_until_copying(courriel: Courriel) -> subprocess.Popen[str]:
    """`courriel backup run` in the background, frozen (SIGSTOP to its process group)
    once it is copying monsite0001's new messages, so that a test strikes mid-run
    however slowly the test itself gets the CPU; `resume()` after the strike."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "courriel", "backup", "run"],
        env=courriel.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    partial = courriel.data / "backups" / ".incoming" / "mail" / INFO / "new"
    deadline = time.monotonic() + 60
    while not (partial.is_dir() and len(os.listdir(partial)) > 10):
        assert proc.poll() is None, "the run ended before the test could strike"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGSTOP)
    return proc


def resume(proc: subprocess.Popen[str]) -> None:
    """Let what is left of a frozen run (and its workers) go on."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGCONT)


def test_interrupted_run_leaves_snapshots_and_the_next_run_finishes(courriel: Courriel) -> None:
    maildir = customer(courriel)
    courriel("backup", "run")
    backups = courriel.data / "backups"
    snapshot = digest(backups / "daily.0" / "mail")
    for n in range(3000):
        deliver(maildir, message(n + 1000, size=2000), durable=False)
    proc = run_until_copying(courriel)
    workers = backup_workers(courriel)
    assert workers, "mailboxes are copied by worker processes"
    proc.send_signal(signal.SIGKILL)  # a crash, a power cut
    resume(proc)
    proc.communicate()
    # Killed with it: none goes on writing.
    wait_until(lambda: not backup_workers(courriel), "the backup workers to die with the run")
    assert (backups / ".incoming").exists()
    names = [s["name"] for s in courriel("backup", "list", "--json").json["snapshots"]]
    assert names == ["daily.0"]
    assert digest(backups / "daily.0" / "mail") == snapshot
    result = courriel("backup", "run", "--json").json  # the lock died with the process
    assert result["files"] >= 3004
    assert not (backups / ".incoming").exists()
    assert "OK" in courriel("backup", "verify").out


def test_a_worker_killed_from_outside_fails_the_run_cleanly(courriel: Courriel) -> None:
    """The out-of-memory killer (or an administrator) ends one worker process: the run
    says so and what to do, and leaves no partial snapshot and no orphan dump."""
    maildir = customer(courriel)
    courriel("backup", "run")
    backups = courriel.data / "backups"
    snapshot = digest(backups / "daily.0" / "mail")
    dumps = sorted(os.listdir(backups / "database"))
    for n in range(6000):
        deliver(maildir, message(n + 1000, size=2000), durable=False)
    proc = run_until_copying(courriel)
    for pid in backup_workers(courriel):
        os.kill(pid, signal.SIGKILL)
    resume(proc)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    assert "A backup worker process was killed" in err and "Traceback" not in err
    assert not (backups / ".incoming").exists()
    assert sorted(os.listdir(backups / "database")) == dumps
    assert digest(backups / "daily.0" / "mail") == snapshot
    assert courriel("backup", "run", "--json").json["files"] >= 6004


def test_backup_disk_vanishing_mid_run(
    transactional_db: None, monsite: object, tmp_path: Path
) -> None:
    """In process, to pull the disk at an exact moment: after the first mailbox
    (transactional: the database dump needs the test database unlocked)."""
    from courriel.backup.policy import load_policy
    from courriel.backup.runner import BackupError, run_backup
    from courriel.config import get_config

    config = get_config()
    maildir = config.mail_root / "monsite.be" / "homes" / "monsite" / "Maildir"
    for n in range(5):
        deliver(maildir, message(n))
    disk = tmp_path / "disk"
    disk.mkdir()
    policy = dataclasses.replace(
        load_policy(config), directory=disk, explicit_directory=True, workers=1
    )
    run_backup(policy)
    before_live, before_snap = live(maildir), digest(disk / "daily.0" / "mail")
    pulled = tmp_path / "pulled"

    def pull(_totals: object, rel: bytes) -> None:
        if rel.endswith(b"Maildir/cur") and disk.exists():
            os.rename(disk, pulled)  # unplugged (the path is gone)

    with pytest.raises(BackupError) as failure:
        run_backup(policy, progress=pull)
    assert "became unavailable during the run" in failure.value.message
    assert "is the backup disk still mounted?" in failure.value.message
    assert live(maildir) == before_live
    os.rename(pulled, disk)  # plugged back
    assert digest(disk / "daily.0" / "mail") == before_snap
    result = run_backup(policy)
    assert result.snapshot == "daily.0" and not (disk / ".incoming").exists()


def test_stopping_the_server_interrupts_a_backup_cleanly(
    transactional_db: None, monsite: object, tmp_path: Path
) -> None:
    import threading

    from courriel.backup.policy import load_policy
    from courriel.backup.runner import BackupError, run_backup

    disk = tmp_path / "disk"
    disk.mkdir()
    policy = dataclasses.replace(load_policy(), directory=disk, explicit_directory=True)
    run_backup(policy)
    before = digest(disk / "daily.0" / "mail")
    stop = threading.Event()

    def shutdown(_totals: object, rel: bytes) -> None:
        if rel.endswith(b"Maildir"):
            stop.set()  # what BackupScheduler.stop() does on SIGTERM

    with pytest.raises(BackupError) as failure:
        run_backup(policy, progress=shutdown, interrupt=stop)
    assert "interrupted (the server is stopping)" in failure.value.message
    assert not (disk / ".incoming").exists()
    assert digest(disk / "daily.0" / "mail") == before


def test_stopping_the_server_stops_the_worker_processes(
    transactional_db: None, monsite: object, tmp_path: Path
) -> None:
    """Mailboxes copied by worker processes: the stop comes while one of them is still
    being copied; the run ends as interrupted and leaves nothing behind."""
    import threading

    from courriel.backup.policy import load_policy
    from courriel.backup.runner import BackupError, run_backup
    from courriel.config import get_config

    config = get_config()
    homes = config.mail_root / "monsite.be" / "homes"
    for login, count in (("monsite", 2), ("monsite0001", 2), ("monsite0002", 3000)):
        for n in range(count):
            deliver(homes / login / "Maildir", message(n), durable=False)
    disk = tmp_path / "disk"
    disk.mkdir()
    policy = dataclasses.replace(
        load_policy(config), directory=disk, explicit_directory=True, workers=2
    )
    stop = threading.Event()
    units: list[bytes] = []

    def shutdown(_totals: object, rel: bytes) -> None:
        if rel.count(b"/") == 2:  # a whole mailbox, reported by the worker processes
            units.append(rel)
            stop.set()  # the first mailbox is done: SIGTERM arrives

    with pytest.raises(BackupError) as failure:
        run_backup(policy, progress=shutdown, interrupt=stop)
    assert "interrupted (the server is stopping)" in failure.value.message
    assert units
    assert not (disk / ".incoming").exists()
    assert run_backup(policy).snapshot == "daily.0"
