"""Files made ready ahead of time for deliveries (`courriel.mailstore.spares`): a
delivery uses one when there is one, and gets on without them in every other case."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
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


@pytest.fixture
def maildir(mail_root: Path) -> Path:
    """A mailbox's Maildir under the mail root, once the ready files are all made."""
    path = mail_root / "monsite.be" / "Maildir"
    create_maildir(path)
    ready_inodes(mail_root)
    return path


def pool(root: Path) -> Path:
    """This process's pool (under `root`)."""
    assert spares._spares is not None
    assert Path(spares._spares.directory).parent == root / spares.POOL
    return Path(spares._spares.directory)


def ready_inodes(root: Path, count: int = spares.READY) -> dict[int, str]:
    """The inode numbers of the ready files, once the helper has made `count`."""
    deadline = time.monotonic() + 10
    while True:
        entries = [  # a name left of a file linked into a Maildir is not a ready file
            e for e in os.scandir(pool(root)) if e.stat(follow_symlinks=False).st_nlink == 1
        ]
        if len(entries) >= count or time.monotonic() > deadline:
            return {entry.inode(): entry.name for entry in entries}
        time.sleep(0.01)


def test_a_delivery_moves_a_ready_file_into_new(mail_root: Path, maildir: Path) -> None:
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


def test_a_burst_longer_than_the_ready_files_is_delivered_whole(
    mail_root: Path, maildir: Path
) -> None:
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


def test_a_folder_deleted_after_it_was_seen_is_made_again(maildir: Path) -> None:
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
    mail_root: Path, maildir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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


def test_deliveries_go_on_when_the_helper_is_gone(maildir: Path) -> None:
    helper = spares._spares._helper  # type: ignore[union-attr]
    helper.kill()
    helper.wait()
    for n in range(spares.READY + 5):  # the ready ones, then files of their own
        deliver(maildir, MESSAGE + str(n).encode())
    assert len(list((maildir / "new").iterdir())) == spares.READY + 5
    assert list((maildir / "tmp").iterdir()) == []


def test_a_helper_that_ended_is_started_again_and_files_are_made_ahead_again(
    mail_root: Path, maildir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = spares._spares._helper  # type: ignore[union-attr]
    first.kill()  # (or a full disk: `: > file` fails and the helper exits)
    first.wait()
    monkeypatch.setattr(spares, "RESTART_EVERY", 0.0)
    for n in range(spares.READY + 1):  # the ready ones, then one finding none: a restart
        deliver(maildir, MESSAGE + str(n).encode())
    helper = spares._spares._helper  # type: ignore[union-attr]
    assert helper is not first and helper.poll() is None
    ready = ready_inodes(mail_root)
    assert len(ready) == spares.READY
    # Named from the next one to be taken on: none a delivery took, none skipped.
    assert sorted(map(int, ready.values())) == list(range(spares.READY, 2 * spares.READY))
    stored = deliver(maildir, MESSAGE)
    assert os.stat(stored.path).st_ino in ready
    assert len(ready_inodes(mail_root)) == spares.READY
    assert len(list((maildir / "new").iterdir())) == spares.READY + 2


def test_a_disk_that_stays_full_gives_one_warning_then_one_when_files_are_made_again(
    mail_root: Path,
    maildir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(spares, "RESTART_EVERY", 0.0)
    working = spares._HELPER
    monkeypatch.setattr(spares, "_HELPER", "exit 1")  # every helper ends at once: disk full
    first = spares._spares._helper  # type: ignore[union-attr]
    first.kill()
    first.wait()
    for n in range(spares.READY + 10):
        deliver(maildir, MESSAGE + str(n).encode())
        spares._spares._helper.wait()  # type: ignore[union-attr]  (ended, as on a full disk)
    ended = [r for r in caplog.records if "ended" in r.getMessage()]
    assert len(ended) == 1, "one warning, not one per try"
    monkeypatch.setattr(spares, "_HELPER", working)  # room on the disk again
    deliver(maildir, MESSAGE)  # finds none: starts a helper that works
    ready_inodes(mail_root)
    deliver(maildir, MESSAGE)
    assert [r.getMessage() for r in caplog.records if "again" in r.getMessage()][-1] == (
        "files are made ahead for deliveries again"
    )
    assert len(list((maildir / "new").iterdir())) == spares.READY + 12


def test_a_helper_that_keeps_ending_is_not_started_at_every_delivery(
    mail_root: Path, maildir: Path
) -> None:
    first = spares._spares._helper  # type: ignore[union-attr]
    first.kill()
    first.wait()
    spares._spares._started = time.monotonic()  # type: ignore[union-attr]  (just started)
    for n in range(spares.READY + 3):
        deliver(maildir, MESSAGE + str(n).encode())
    assert spares._spares._helper is first  # type: ignore[union-attr]


def test_a_live_process_pool_is_kept_a_dead_one_goes_at_the_next_start(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    root.mkdir()
    # Another serving process on the same mail root, later killed without stopping.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from courriel.mailstore import spares;"
            "spares.start(Path(sys.argv[1])); print(spares._spares.directory, flush=True);"
            "time.sleep(60)",
            str(root),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    left = Path(child.stdout.readline().strip())
    assert left.is_dir() and left.parent == root / spares.POOL
    spares.start(root)
    try:
        assert left.is_dir(), "the pool of a process alive was removed"
        assert pool(root) != left
    finally:
        spares.stop()
    child.send_signal(signal.SIGKILL)
    child.wait()
    spares.start(root)
    try:
        assert not left.exists()
        assert pool(root).is_dir()
        mine = pool(root)
    finally:
        spares.stop()
    assert not mine.exists()
    assert list((root / spares.POOL).iterdir()) == []


def test_a_pool_left_under_this_very_pid_never_touches_delivered_mail(tmp_path: Path) -> None:
    """A container's first process has the same pid after every restart: the names a
    killed process left in its pool, second names of delivered messages, must not be
    taken for ready files (written over, or emptied by the helper)."""
    root = tmp_path / "mail"
    maildir = root / "monsite.be" / "Maildir"
    create_maildir(maildir)
    delivered = maildir / "new" / "1.M1P1.host,S=39"
    delivered.write_bytes(MESSAGE)
    left = root / spares.POOL / str(os.getpid())
    left.mkdir(parents=True)
    for name in ("0", "1"):
        os.link(delivered, left / name)
    spares.start(root)
    try:
        ready_inodes(root)
        deliver(maildir, b"the next one\r\n")
        deliver(maildir, b"and another\r\n")
    finally:
        spares.stop()
    assert delivered.read_bytes() == MESSAGE
    assert delivered.stat().st_nlink == 1
    assert not left.exists()


def test_a_pool_being_made_is_left_alone_until_it_is_a_minute_old(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    making = root / spares.POOL / ".4242.0123456789ab"  # another process between two steps
    making.mkdir(parents=True)
    spares.start(root)
    spares.stop()
    assert making.is_dir()
    old = time.time() - 120
    os.utime(making, (old, old))  # its process died between the two steps
    spares.start(root)
    spares.stop()
    assert not making.exists()


def test_a_missing_mail_root_is_made_for_the_service_user_alone(tmp_path: Path) -> None:
    root = tmp_path / "new" / "mail"
    spares.start(root)
    try:
        for level in (tmp_path / "new", root, root / ".courriel", pool(root)):
            assert level.stat().st_mode & 0o777 == 0o700, level
    finally:
        spares.stop()


def test_a_forked_child_makes_its_own_files(mail_root: Path, maildir: Path) -> None:
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
    mail_root: Path, maildir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bind mount has the same device number, yet a rename across it fails (EXDEV)."""
    ready = ready_inodes(mail_root)
    monkeypatch.setattr(os, "link", _failing_link(errno.EXDEV))
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


def test_the_names_left_in_the_pool_go_a_batch_at_a_time(maildir: Path) -> None:
    """A message linked into a Maildir keeps its name in the pool only until the next
    batch: deleting the message then frees its space."""
    stored = [deliver(maildir, MESSAGE + str(n).encode()) for n in range(spares.UNLINK_BATCH)]
    assert all(s.path.stat().st_nlink == 1 for s in stored)  # the batch went
    more = deliver(maildir, MESSAGE)
    assert more.path.stat().st_nlink == 2  # its pool name waits for the next batch
    spares.stop()
    assert more.path.stat().st_nlink == 1 and more.path.read_bytes() == MESSAGE


def test_a_copy_a_crash_left_short_is_replaced_by_the_replay(maildir: Path) -> None:
    """The journal replays a copy under its name when the file there is not whole; the
    ready file then takes its place, as a rename from tmp/ would."""
    (maildir / "new" / "1.M1P1.host,S=42").write_bytes(b"From: a")  # short
    stored = deliver(maildir, MESSAGE, name="1.M1P1.host,S=42")
    assert stored.path.read_bytes() == MESSAGE
    assert [p.name for p in (maildir / "new").iterdir()] == ["1.M1P1.host,S=42"]


def test_a_copy_to_another_mount_is_flushed_before_it_is_seen(
    maildir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy made for a bind mount (EXDEV) is a durable delivery like any other:
    flushed before its rename into new/, with the time the message came in."""
    monkeypatch.setattr(os, "link", _failing_link(errno.EXDEV))
    flushed = _record_fsyncs(monkeypatch)
    stored = deliver_many([Delivery(maildir, MESSAGE, mtime=1_000_000_000)])[0]
    assert stored.path.read_bytes() == MESSAGE
    assert stored.path.stat().st_mtime == 1_000_000_000
    assert any(path.startswith(str(maildir / "tmp") + "/") for path in flushed), flushed


@pytest.mark.parametrize("code", [errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK])
def test_where_no_second_name_can_be_made_the_ready_file_is_moved(
    mail_root: Path, maildir: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    ready = ready_inodes(mail_root)
    monkeypatch.setattr(os, "link", _failing_link(code))
    first = deliver(maildir, MESSAGE)
    assert first.path.read_bytes() == MESSAGE and first.path.stat().st_ino in ready
    second = deliver(maildir, MESSAGE + b"2")  # that folder makes its own from now on
    assert second.path.read_bytes() == MESSAGE + b"2"
    assert second.path.stat().st_ino not in ready


def test_a_durable_delivery_flushes_the_file_again_once_it_has_two_names(
    maildir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its count of names must reach the disk too: otherwise, after a crash, removing
    the pool name could free a message that new/ still names."""
    events: list[str] = []
    real_link = os.link

    def link(source: str, target: str) -> None:
        real_link(source, target)
        events.append(f"link {target}")

    monkeypatch.setattr(os, "link", link)
    flushed = _record_fsyncs(monkeypatch, events)
    stored = deliver(maildir, MESSAGE)
    assert f"link {stored.path}" in events
    after_link = events[events.index(f"link {stored.path}") :]
    assert "fsync {}:{}".format(*_identity(stored.path.stat())) in after_link, events
    assert flushed


def test_when_one_copy_cannot_go_in_the_others_written_leave_nothing_in_the_pool(
    mail_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = (mail_root / "monsite.be" / name / "Maildir" for name in ("a", "b"))
    create_maildir(first)
    create_maildir(second)
    ready_inodes(mail_root)
    monkeypatch.setattr(os, "link", _failing_link(errno.EIO))
    with pytest.raises(MaildirError):
        deliver_many([Delivery(first, MESSAGE), Delivery(second, MESSAGE)])
    written = [e.name for e in os.scandir(pool(mail_root)) if e.stat().st_size]
    assert written == [], "a message written for nobody stays on disk"


def test_a_copy_that_cannot_go_in_after_another_did_takes_that_one_back(
    mail_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second mailbox's directory cannot grow (a full disk): the first copy, in
    place already, is taken back, so the sender's retry gives nobody two copies."""
    from courriel.mailstore import quota

    first, second = (mail_root / "monsite.be" / name / "Maildir" for name in ("a", "b"))
    create_maildir(first)
    create_maildir(second)
    ready_inodes(mail_root)
    real_link = os.link

    def link(source: str, target: str) -> None:
        if "/b/Maildir/" in str(target):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_link(source, target)

    monkeypatch.setattr(os, "link", link)
    with pytest.raises(MaildirError):
        deliver_many([Delivery(first, MESSAGE), Delivery(second, MESSAGE)])
    monkeypatch.undo()
    for box in (first, second):
        assert [p for sub in ("new", "cur", "tmp") for p in (box / sub).iterdir()] == []
        assert quota.usage(box) == (0, 0)
    assert len(ready_inodes(mail_root)) == spares.READY
    written = [e.name for e in os.scandir(pool(mail_root)) if e.stat().st_size]
    assert written == [], "a message written for nobody stays on disk"


def test_a_pool_name_left_by_a_delivery_goes_soon_even_with_no_more_mail(
    mail_root: Path,
    maildir: Path,
) -> None:
    """A message deleted just after it came in must not keep its data on disk under
    its pool name until sixteen more messages arrive."""
    stored = deliver(maildir, MESSAGE)
    wait = time.monotonic() + spares.UNLINK_AFTER + 5
    while stored.path.stat().st_nlink > 1 and time.monotonic() < wait:
        time.sleep(0.05)
    assert stored.path.stat().st_nlink == 1


def test_stopping_waits_for_a_delivery_still_writing_into_a_ready_file(
    mail_root: Path,
    maildir: Path,
) -> None:
    writing, go_on = threading.Event(), threading.Event()

    class Slow:
        def write_to(self, fd: int) -> int:
            writing.set()
            go_on.wait(10)
            return os.write(fd, MESSAGE)

    results: list[object] = []

    def delivery() -> None:
        try:
            results.append(deliver_many([Delivery(maildir, [Slow()])])[0])
        except Exception as error:
            results.append(error)

    deliveries = threading.Thread(target=delivery)
    deliveries.start()
    assert writing.wait(10)
    current = spares.current()
    assert current is not None
    held = _held(current)
    stopping = threading.Thread(target=spares.stop)
    stopping.start()
    stopping.join(0.5)
    assert stopping.is_alive(), "the pool went while a delivery was writing into it"
    assert _kept_by_a_forked_child(held) == 0  # a fork while stopping lets go too
    go_on.set()
    deliveries.join(10)
    stopping.join(10)
    [stored] = results
    assert not isinstance(stored, Exception), stored
    assert stored.path.read_bytes() == MESSAGE  # type: ignore[union-attr]
    assert list((mail_root / spares.POOL).iterdir()) == []


def test_a_forked_child_keeps_neither_the_helpers_pipe_nor_the_pools_lock(
    mail_root: Path,
) -> None:
    """Else the parent's stop waits for the child (the helper never sees the end of its
    input), and a pool stays locked after its process is gone."""
    ready_inodes(mail_root)
    current = spares.current()
    assert current is not None
    assert _kept_by_a_forked_child(_held(current)) == 0


def _held(current: spares.Spares) -> set[tuple[int, int]]:
    """The helper's pipe and the pool's lock, as a forked child would see them."""
    pipe = current._helper.stdin.fileno()  # type: ignore[union-attr]
    return {_identity(os.fstat(pipe)), _identity(os.stat(current.directory))}


def _kept_by_a_forked_child(held: set[tuple[int, int]]) -> int:
    """How many of `held` a child forked now still has open."""
    report_read, report_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            kept = 0
            for name in os.listdir("/proc/self/fd"):
                with contextlib.suppress(OSError):
                    kept += _identity(os.stat(f"/proc/self/fd/{name}")) in held
            os.write(report_write, str(kept).encode())
        finally:
            os._exit(0)
    os.close(report_write)
    kept = os.read(report_read, 16)
    os.close(report_read)
    os.waitpid(pid, 0)
    return int(kept)


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def _failing_link(code: int) -> Callable[[str, str], None]:
    real_link = os.link

    def link(source: str, target: str) -> None:
        if "/.courriel/tmp/" in str(source):
            raise OSError(code, os.strerror(code))
        real_link(source, target)

    return link


def _record_fsyncs(monkeypatch: pytest.MonkeyPatch, events: list[str] | None = None) -> list[str]:
    """The paths of the files and directories flushed from now on."""
    flushed: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        flushed.append(path)
        if events is not None:
            events.append("fsync {}:{}".format(*_identity(os.fstat(fd))))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return flushed


def test_a_message_a_client_moves_to_cur_at_once_is_still_delivered_once(
    maildir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An IMAP session watching new/ may claim the message (new/ → cur/) the moment its
    name appears, before a durable delivery has flushed it again: the delivery must
    not then fail (a 451, and the sender's retry a second copy)."""
    real_link = os.link

    def link_then_claimed(source: str, target: str) -> None:
        real_link(source, target)
        if "/new/" in str(target):
            os.rename(target, str(target).replace("/new/", "/cur/") + ":2,")

    monkeypatch.setattr(os, "link", link_then_claimed)
    deliver(maildir, MESSAGE)  # durable
    [claimed] = list((maildir / "cur").iterdir())
    assert claimed.read_bytes() == MESSAGE
    assert list((maildir / "new").iterdir()) == []
