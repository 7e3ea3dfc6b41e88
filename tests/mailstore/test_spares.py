"""Files made ready ahead of time for deliveries (`courriel.mailstore.spares`): a
delivery uses one when there is one, and gets on without them in every other case."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.mailstore import spares
from courriel.mailstore.layout import create_maildir
from courriel.mailstore.maildir import Delivery, MaildirError, deliver, deliver_many

MESSAGE = b"From: a@b.be\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture
def mail_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "mail"
    root.mkdir()
    spares.start(root)
    try:
        yield root
    finally:
        spares.stop()


def pool(root: Path) -> Path:
    return root / spares.POOL / str(os.getpid())


def ready_inodes(root: Path, count: int = spares.READY) -> dict[int, str]:
    """The inode numbers of the ready files, once the helper has made `count`."""
    deadline = time.monotonic() + 10
    while True:
        entries = list(os.scandir(pool(root)))
        if len(entries) >= count or time.monotonic() > deadline:
            return {entry.inode(): entry.name for entry in entries}
        time.sleep(0.01)


def test_a_delivery_moves_a_ready_file_into_new(mail_root: Path) -> None:
    maildir = mail_root / "monsite.be" / "Maildir"
    create_maildir(maildir)
    ready = ready_inodes(mail_root)
    assert len(ready) == spares.READY
    assert all(os.stat(pool(mail_root) / name).st_size == 0 for name in ready.values())
    stored = deliver(maildir, MESSAGE)
    assert stored.path.parent == maildir / "new"
    assert stored.path.read_bytes() == MESSAGE
    assert os.stat(stored.path).st_ino in ready, "the message was not written in a ready file"
    assert os.stat(stored.path).st_mode & 0o777 == 0o600
    assert list((maildir / "tmp").iterdir()) == []
    # The helper makes another one, so that as many stay ready.
    assert len(ready_inodes(mail_root)) == spares.READY


def test_a_burst_longer_than_the_ready_files_is_delivered_whole(mail_root: Path) -> None:
    maildir = mail_root / "monsite.be" / "Maildir"
    create_maildir(maildir)
    ready_inodes(mail_root)
    for n in range(3 * spares.READY):
        deliver(maildir, MESSAGE + str(n).encode())
    bodies = sorted(path.read_bytes() for path in (maildir / "new").iterdir())
    assert bodies == sorted(MESSAGE + str(n).encode() for n in range(3 * spares.READY))
    assert list((maildir / "tmp").iterdir()) == []
    assert len(ready_inodes(mail_root)) == spares.READY  # nothing left over, nothing lost


def test_folders_with_flags_and_new_mailboxes(mail_root: Path) -> None:
    ready_inodes(mail_root)
    fresh = mail_root / "monsite.be" / "new-user" / "Maildir"  # made on first delivery
    stored = deliver(fresh, MESSAGE)
    assert stored.path.read_bytes() == MESSAGE
    maildir = mail_root / "monsite.be" / "Maildir"
    create_maildir(maildir)
    sent = deliver(maildir, MESSAGE, folder="Sent", flags="S")
    assert sent.path.parent == maildir / ".Sent" / "cur" and sent.path.name.endswith(":2,S")


def test_a_folder_deleted_after_it_was_seen_is_made_again(mail_root: Path) -> None:
    maildir = mail_root / "monsite.be" / "Maildir"
    create_maildir(maildir)
    ready_inodes(mail_root)
    deliver(maildir, MESSAGE, folder="Junk")
    for sub in ("new", "cur", "tmp"):
        for path in (maildir / ".Junk" / sub).iterdir():
            path.unlink()
        (maildir / ".Junk" / sub).rmdir()
    (maildir / ".Junk" / "maildirfolder").unlink()
    (maildir / ".Junk").rmdir()  # a client deleted the folder
    stored = deliver(maildir, MESSAGE, folder="Junk")
    assert stored.path.parent == maildir / ".Junk" / "new"
    assert stored.path.read_bytes() == MESSAGE


def test_a_failed_write_leaves_nothing_and_the_file_is_made_again(
    mail_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maildir = mail_root / "monsite.be" / "Maildir"
    create_maildir(maildir)
    before = ready_inodes(mail_root)

    class Full:
        def write_to(self, fd: int) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(MaildirError) as caught:
        deliver_many([Delivery(maildir, [b"head\r\n", Full()])])
    assert caught.value.errno == errno.ENOSPC
    for sub in ("new", "cur", "tmp"):
        assert list((maildir / sub).iterdir()) == []
    after = ready_inodes(mail_root)
    assert len(after) == spares.READY
    # The one written to is gone, and another was made in its place.
    assert set(before.values()) - set(after.values()) == {"0"}
    assert set(after.values()) - set(before.values()) == {str(spares.READY)}


def test_a_maildir_on_another_file_system_makes_its_own_file(mail_root: Path) -> None:
    if os.stat("/dev/shm").st_dev == os.stat(mail_root).st_dev:
        pytest.skip("/dev/shm is not another file system here")
    other = Path(f"/dev/shm/courriel-test-{os.getpid()}") / "Maildir"
    try:
        create_maildir(other)
        ready = ready_inodes(mail_root)
        stored = deliver(other, MESSAGE)
        assert stored.path.read_bytes() == MESSAGE
        assert set(ready_inodes(mail_root)) == set(ready)  # none taken
    finally:
        subprocess.run(["rm", "-rf", str(other.parent)], check=False)


def test_deliveries_go_on_when_the_helper_is_gone(mail_root: Path) -> None:
    maildir = mail_root / "monsite.be" / "Maildir"
    create_maildir(maildir)
    ready_inodes(mail_root)
    helper = spares._spares._helper  # type: ignore[union-attr]
    helper.kill()
    helper.wait()
    for n in range(spares.READY + 5):  # the ready ones, then files of their own
        deliver(maildir, MESSAGE + str(n).encode())
    assert len(list((maildir / "new").iterdir())) == spares.READY + 5
    assert list((maildir / "tmp").iterdir()) == []


def test_stopping_removes_the_pool_and_a_dead_process_pool_goes_at_the_next_start(
    tmp_path: Path,
) -> None:
    root = tmp_path / "mail"
    root.mkdir()
    # A serving process killed without stopping: its pool stays behind.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from courriel.mailstore import spares;"
            "spares.start(Path(sys.argv[1])); print('started', flush=True); time.sleep(60)",
            str(root),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "started"
    left = root / spares.POOL / str(child.pid)
    assert left.is_dir()
    child.send_signal(signal.SIGKILL)
    child.wait()
    spares.start(root)
    try:
        assert not left.exists()
        assert pool(root).is_dir()
    finally:
        spares.stop()
    assert not pool(root).exists()
    assert list((root / spares.POOL).iterdir()) == []


def test_a_missing_mail_root_is_made_for_the_service_user_alone(tmp_path: Path) -> None:
    root = tmp_path / "new" / "mail"
    spares.start(root)
    try:
        for level in (tmp_path / "new", root, root / ".courriel", pool(root)):
            assert level.stat().st_mode & 0o777 == 0o700, level
    finally:
        spares.stop()


def test_a_forked_child_makes_its_own_files(mail_root: Path) -> None:
    maildir = mail_root / "monsite.be" / "Maildir"
    create_maildir(maildir)
    ready = ready_inodes(mail_root)
    pid = os.fork()
    if pid == 0:  # the child: its delivery must not take the parent's next ready file
        try:
            deliver(maildir, b"from the child\r\n")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    [stored] = list((maildir / "new").iterdir())
    assert stored.stat().st_ino not in ready
    assert deliver(maildir, MESSAGE).path.stat().st_ino in ready


def test_a_folder_on_another_mount_of_the_same_file_system_gets_a_copy(
    mail_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bind mount has the same device number, yet a rename across it fails (EXDEV)."""
    maildir = mail_root / "monsite.be" / "Maildir"
    create_maildir(maildir)
    ready = ready_inodes(mail_root)
    real_rename = os.rename

    def across_mounts(source: str, target: str) -> None:
        if str(pool(mail_root)) in str(source):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(source, target)

    monkeypatch.setattr(os, "rename", across_mounts)
    first = deliver(maildir, MESSAGE)
    assert first.path.read_bytes() == MESSAGE
    assert first.path.stat().st_mode & 0o777 == 0o600
    assert first.path.stat().st_ino not in ready
    second = deliver(maildir, MESSAGE + b"2")  # made in tmp/ from now on
    assert second.path.read_bytes() == MESSAGE + b"2"
    assert list((maildir / "tmp").iterdir()) == []
    after = ready_inodes(mail_root)
    assert len(after) == spares.READY and "0" not in after.values()  # used, removed, replaced
    assert "1" in after.values()  # not taken for the second message
