"""Bad input and faults on the SMTP side: the right reply (4xx when a retry can
succeed), nothing partial in a Maildir, nothing acknowledged lost."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from courriel.processes import usable_cores
from tests.fixtures.platform import STRONG, Platform, message, private_platform
from tests.fixtures.waiting import wait_until


@pytest.fixture(scope="module")
def target(platform: Platform) -> Platform:
    platform.courriel(
        "user", "create", "monsite.be", "--real", "Info", "--pass", STRONG, "--extra", "info"
    )
    return platform


def raw_session(platform: Platform, lines: list[bytes], *, ehlo: bool = True) -> list[str]:
    """Send raw bytes and read every reply line (no client library to fix things up)."""
    with socket.create_connection(("127.0.0.1", platform.port("smtp")), timeout=60) as sock:
        stream = sock.makefile("rb")
        replies = [stream.readline().decode()]
        if ehlo:
            sock.sendall(b"EHLO raw.example.org\r\n")
            while True:
                line = stream.readline().decode()
                if line[3:4] == " ":
                    break
        for line in lines:
            sock.sendall(line)
            if line.endswith(b"\r\n.\r\n") or not line.startswith((b"From:", b"Subject:", b"x")):
                replies.append(stream.readline().decode().strip())
        return replies


def nothing_partial(platform: Platform, login: str = "monsite0001") -> None:
    """No half-written file is left in the Maildir's tmp/ once the server is done
    (it may clean up a moment after its reply, or after noticing a client is gone)."""
    tmp = platform.maildir(login) / "tmp"
    wait_until(lambda: not list(tmp.iterdir()), f"an empty {tmp}")


def data_reply(platform: Platform, body: bytes, mail_options: bytes = b"") -> str:
    replies = raw_session(
        platform,
        [
            b"MAIL FROM:<alice@example.org>" + mail_options + b"\r\n",
            b"RCPT TO:<info@monsite.be>\r\n",
            b"DATA\r\n",
            body + b"\r\n.\r\n",
        ],
    )
    if not replies[-1].startswith("250"):
        assert not [m for m in platform.messages("monsite0001") if body in m]
    nothing_partial(platform)
    return replies[-1]


GOOD = b"From: a@example.org\r\nSubject: ok\r\n\r\nfine"


def test_good_message_for_reference(target: Platform) -> None:
    assert data_reply(target, GOOD).startswith("250 2.0.0")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"From: a@example.org\r\nSubject: lf\r\n\r\nbare\nLF here", "554 5.6.0"),
        (b"From: a@example.org\r\nSubject: smuggle\r\n\r\nx\n.\r\nMAIL FROM:<evil@x>", "554 5.6.0"),
        (b"From: a@example.org\r\nSubject: nul\r\n\r\nnul \x00 byte", "554 5.6.0"),
        (b"From: a@example.org\r\nX-Long: " + b"y" * 1000 + b"\r\n\r\nbody", "554 5.6.0"),
        ("From: a@example.org\r\nSubject: é\r\n\r\nhéhé".encode(), "554 5.6.1"),
    ],
    ids=["bare-lf", "smuggling", "nul", "long-header", "8bit-undeclared"],
)
def test_malformed_content_is_refused(target: Platform, body: bytes, expected: str) -> None:
    assert data_reply(target, body).startswith(expected)


def test_8bit_with_8bitmime_is_accepted_byte_exact(target: Platform) -> None:
    body = "From: a@example.org\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\ncafé crème".encode()
    assert data_reply(target, body, b" BODY=8BITMIME").startswith("250")
    assert target.wait_message("monsite0001", body).endswith(body + b"\r\n")


def test_commands_out_of_order_and_bad_addresses(target: Platform) -> None:
    replies = raw_session(
        target,
        [
            b"RCPT TO:<info@monsite.be>\r\n",
            b"DATA\r\n",
            b"MAIL FROM:<not an address>\r\n",
            b"MAIL FROM:<alice@example.org>\r\n",
            b"MAIL FROM:<alice@example.org>\r\n",
            b"RCPT TO:<@@monsite.be>\r\n",
            b"DATA\r\n",
            b"FOO bar\r\n",
        ],
    )
    assert replies[1].startswith("503 5.5.1")
    assert replies[2].startswith("503 5.5.1")
    assert replies[3].startswith("553 5.1.3")
    assert replies[4].startswith("250")
    assert replies[5].startswith("503 5.5.1")  # nested MAIL
    assert replies[6][:3] in {"501", "553"}
    assert replies[7].startswith("503 5.5.1")  # DATA without a good RCPT
    assert replies[8].startswith("500 5.5.2")


def test_client_vanishing_mid_data_leaves_nothing(target: Platform) -> None:
    with socket.create_connection(("127.0.0.1", target.port("smtp")), timeout=60) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        for line in (
            b"EHLO x.example.org\r\n",
            b"MAIL FROM:<a@example.org>\r\n",
            b"RCPT TO:<info@monsite.be>\r\n",
            b"DATA\r\n",
        ):
            sock.sendall(line)
        sock.sendall(b"From: a@example.org\r\nSubject: cut\r\n\r\n" + b"half a message\r\n" * 100)
    nothing_partial(target)
    assert not [m for m in target.messages("monsite0001") if b"half a message" in m]


def test_too_many_recipients(target: Platform) -> None:
    with target.smtp() as client:
        client.ehlo("many.example.org")
        client.mail("a@example.org")
        codes = [client.rcpt("info@monsite.be")[0] for _ in range(101)]
    assert codes[:100] == [250] * 100 and codes[100] == 452


def test_connections_per_ip_are_limited(target: Platform) -> None:
    # 20 per SMTP process ([smtp] workers: one per core by default); the kernel spreads
    # connections between processes, so past 20 x processes one is certainly refused.
    processes = usable_cores()
    sockets, greetings = [], []
    try:
        for _ in range(20 * processes + 1):
            sock = socket.create_connection(("127.0.0.1", target.port("smtp")), timeout=60)
            greetings.append(sock.makefile("rb").readline())
            sockets.append(sock)
    finally:
        for sock in sockets:
            sock.close()
    refused = [g for g in greetings if g.startswith(b"421 4.7.0 Too many connections")]
    assert refused and len(greetings) - len(refused) >= 20


def test_oversized_message_is_refused_after_data(target: Platform) -> None:
    target_limit = 50 * 1024 * 1024
    with target.smtp() as client:
        client.ehlo("big.example.org")
        client.mail("a@example.org")
        client.rcpt("info@monsite.be")
        code, _ = client.data(
            b"From: a@example.org\r\n\r\n" + (b"z" * 998 + b"\r\n") * (target_limit // 1000 + 10)
        )
    assert code == 552
    nothing_partial(target)


# --- faults that need a platform of their own ---------------------------------------------


@contextlib.contextmanager
def small_disk(path: Path, size: str = "2m"):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_gives_452_and_nothing_partial_then_recovers(tmp_path: Path) -> None:
    with (
        small_disk(tmp_path / "mail") as mail_root,
        private_platform(
            tmp_path,
            env={"COURRIEL_MAIL_ROOT": str(mail_root), "COURRIEL_MAIL_MIN_FREE_SPACE": "64K"},
            users=(("info", ("--quota", "unlimited")),),
        ) as platform,
    ):
        filler = mail_root / "filler"
        with open(filler, "wb") as handle, contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        # A full disk: refused at once, even before the size is known.
        with platform.smtp() as client:
            client.ehlo("x.example.org")
            assert client.mail("a@example.org") == (
                452,
                b"4.3.1 Insufficient system storage, try again later",
            )
        # Almost full: the envelope passes, the message itself does not fit.
        os.truncate(filler, filler.stat().st_size - 128 * 1024)
        time.sleep(0.5)  # free space is measured at most every 0.2 s
        with platform.smtp() as client:
            client.ehlo("x.example.org")
            assert client.mail("a@example.org")[0] == 250
            client.rcpt("info@monsite.be")
            code, text = client.data(
                message("a@example.org", ["info@monsite.be"], ("y" * 60 + "\r\n") * 2000)
            )
        assert code == 452 and text.startswith(b"4.3.1"), (code, text)
        maildir = platform.maildir("monsite0001")
        assert list((maildir / "new").iterdir()) == []
        assert list((maildir / "tmp").iterdir()) == []
        filler.unlink()
        platform.send("a@example.org", ["info@monsite.be"], "room again")
        assert platform.wait_message("monsite0001", b"room again")


def test_database_going_away_gives_451_and_recovers(tmp_path: Path) -> None:
    admin = os.environ.get("COURRIEL_DATABASE_URL", "")
    if not admin.startswith("postgres"):
        pytest.skip(
            "the embedded SQLite database cannot go away on its own; "
            "this runs in the PostgreSQL pass of CI"
        )
    import psycopg

    with private_platform(tmp_path, users=(("info", ()), ("other", ()))) as platform:
        name = platform.courriel.env["COURRIEL_DATABASE_URL"].rsplit("/", 1)[1]
        platform.send("a@example.org", ["info@monsite.be"], "before")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
        try:
            # An address not looked up before (recently resolved ones are answered
            # from the routing cache and keep flowing during a short outage).
            with platform.smtp() as client:
                client.ehlo("x.example.org")
                client.mail("a@example.org")
                code, text = client.rcpt("other@monsite.be")
            assert code == 451 and text.startswith(b"4.3.0"), (code, text)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        platform.send("a@example.org", ["other@monsite.be"], "after")
        assert platform.wait_message("monsite0002", b"after")


def test_idle_clients_are_told_and_disconnected(tmp_path: Path) -> None:
    env = {"COURRIEL_SMTP_IDLE_TIMEOUT": "4s"}
    with (
        private_platform(tmp_path, env=env) as platform,
        socket.create_connection(("127.0.0.1", platform.port("smtp")), timeout=60) as sock,
    ):
        stream = sock.makefile("rb")
        stream.readline()
        sock.sendall(b"EHLO slow.example.org\r\n")
        while stream.readline()[3:4] != b" ":
            pass
        time.sleep(2)
        sock.sendall(b"NOOP\r\n")  # activity: the 4 s start again
        assert stream.readline().startswith(b"250")
        started = time.monotonic()
        assert stream.readline() == b"421 4.4.2 Idle too long, closing the connection\r\n"
        # Not 2 s (the first 4 s going on), not the default 5 minutes.
        assert 3 < time.monotonic() - started < 30
        assert stream.readline() == b""
