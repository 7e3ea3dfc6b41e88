"""Big messages never all in memory: DATA beyond 1 MiB goes to a spool file as it
arrives and from there into the Maildirs (kernel copies); they arrive byte-exact,
dot-stuffing undone across every read, the content rules still apply, and the spool
keeps nothing afterwards."""

from __future__ import annotations

import smtplib
import threading
from pathlib import Path

import pytest

from courriel.delivery.body import SPILL_ABOVE, clean_spool, spool_directory
from tests.fixtures.platform import STRONG, Platform, private_platform


def big_message(subject: str, megabytes: float) -> bytes:
    """Lines of every kind: long ones, short ones, and lines that start with a dot
    (stuffed on the wire), so that some fall across the server's reads."""
    lines = [f"From: big@example.org\r\nSubject: {subject}\r\n".encode()]
    size, n = 0, 0
    while size < megabytes * 1024 * 1024:
        line = [b"." * (n % 3) + b"dot line %d" % n, b"x" * (n % 990), b"..", b""][n % 4]
        lines.append(line + b"\r\n")
        size += len(line) + 2
        n += 1
    return lines[0] + b"\r\n" + b"".join(lines[1:])


def delivered(platform: Platform, login: str, subject: bytes) -> bytes:
    message = platform.wait_message(login, b"Subject: " + subject)
    return message[message.index(b"From: big@example.org") :]


def spool_files(platform: Platform) -> list[Path]:
    directory = spool_directory(platform.courriel.data)
    return list(directory.iterdir()) if directory.is_dir() else []


@pytest.fixture(scope="module")
def big(platform: Platform) -> Platform:
    platform.courriel(
        "user", "create", "monsite.be", "--real", "Big", "--pass", STRONG, "--extra", "big"
    )
    return platform


def test_a_big_message_arrives_byte_exact_and_the_spool_is_emptied(big: Platform) -> None:
    content = big_message("big one", 3)
    assert len(content) > SPILL_ABOVE
    with big.smtp() as client:
        client.sendmail("big@example.org", ["big@monsite.be"], content)
    assert delivered(big, "monsite0001", b"big one") == content
    assert spool_files(big) == []


def test_the_content_rules_apply_to_a_big_message_too(big: Platform) -> None:
    content = big_message("nul at the end", 2) + b"a NUL \x00 byte\r\n"
    with big.smtp() as client:
        client.ehlo("x.example.org")
        client.mail("big@example.org")
        client.rcpt("big@monsite.be")
        code, text = client.data(content)
    assert (code, text[:5]) == (554, b"5.6.0")
    assert spool_files(big) == []


def test_several_big_messages_at_once(big: Platform) -> None:
    contents = {n: big_message(f"parallel {n}", 2) for n in range(4)}

    def send(n: int) -> None:
        with big.smtp() as client:
            client.sendmail("big@example.org", ["big@monsite.be"], contents[n])

    threads = [threading.Thread(target=send, args=(n,)) for n in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for n, content in contents.items():
        assert delivered(big, "monsite0001", f"parallel {n}".encode()) == content
    assert spool_files(big) == []


def test_a_big_message_for_two_mailboxes_and_over_lmtp(tmp_path: Path) -> None:
    serve_env = {"COURRIEL_LMTP_ENABLED": "true"}
    users = (("info", ()), ("other", ()))
    with private_platform(tmp_path, users=users, serve_env=serve_env) as platform:
        content = big_message("for two", 2)
        with platform.smtp() as client:
            client.sendmail("big@example.org", ["info@monsite.be", "other@monsite.be"], content)
        assert delivered(platform, "monsite0001", b"for two") == content
        assert delivered(platform, "monsite0002", b"for two") == content
        lmtp = smtplib.LMTP("127.0.0.1", platform.port("lmtp"), timeout=60)
        content = big_message("over lmtp", 2)
        lmtp.sendmail("big@example.org", ["info@monsite.be"], content)
        lmtp.quit()
        assert delivered(platform, "monsite0001", b"over lmtp") == content
        assert spool_files(platform) == []


def test_memory_stays_flat_while_big_messages_arrive(tmp_path: Path) -> None:
    """The server's peak resident memory (VmHWM) grows by far less than the mail."""
    serve_env = {"COURRIEL_SMTP_WORKERS": "1"}  # one process to watch
    with private_platform(tmp_path, serve_env=serve_env) as platform:
        pid = platform.served.proc.pid
        platform.send("warm@example.org", ["info@monsite.be"], "warm up")
        platform.wait_message("monsite0001", b"warm up")
        before = peak_kib(pid)
        contents = [big_message(f"memory {n}", 12) for n in range(4)]

        def send(content: bytes) -> None:
            with platform.smtp() as client:
                client.sendmail("big@example.org", ["info@monsite.be"], content)

        threads = [threading.Thread(target=send, args=(c,)) for c in contents]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        for n in range(4):
            platform.wait_message("monsite0001", f"Subject: memory {n}".encode())
        grown = peak_kib(pid) - before
        assert grown < 16 * 1024, f"peak memory grew by {grown} KiB for 48 MiB of mail"


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_what_a_dead_process_left_in_the_spool_goes(tmp_path: Path) -> None:
    directory = spool_directory(tmp_path)
    directory.mkdir(parents=True)
    (directory / "999999999.1").write_bytes(b"half a message")  # no such process
    assert clean_spool(tmp_path) == 1
    assert list(directory.iterdir()) == []
