"""What a running `courriel serve` holds in memory after taking mail (issue 13: the
whole process tree under 150 MiB with every listener on): its threads share two malloc
arenas instead of keeping one each, and a library only a rare path needs is not
loaded until that path runs."""

from __future__ import annotations

import itertools
import smtplib
import threading
from pathlib import Path

from tests.fixtures.platform import private_platform

LINES = ("x" * 98 + "\r\n") * 20
HEAP_MAX = 64 * 1024 * 1024  # glibc's reservation for each thread arena (64-bit)


def thread_arenas(pid: int) -> int:
    """glibc's arenas besides the main one ([heap]): each is a 64 MiB-aligned anonymous
    reservation of 64 MiB, its used start read-write and the rest inaccessible."""
    spans = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        start, end = (int(value, 16) for value in fields[0].split("-"))
        spans.append((start, end, fields[1], len(fields) > 5))
    count = 0
    for (start, end, mode, named), (start2, end2, mode2, named2) in itertools.pairwise(spans):
        if (
            start % HEAP_MAX == 0
            and mode == "rw-p"
            and mode2 == "---p"
            and not named
            and not named2
            and end == start2
            and end2 - start == HEAP_MAX
        ):
            count += 1
    return count


def test_threads_share_two_malloc_arenas_after_parallel_mail(tmp_path: Path) -> None:
    serve_env = {"COURRIEL_SMTP_WORKERS": "1"}  # one process to watch
    with private_platform(tmp_path, serve_env=serve_env) as platform:

        def send(sender: int) -> None:
            for n in range(25):
                with smtplib.SMTP("127.0.0.1", platform.port("smtp"), timeout=60) as client:
                    client.sendmail(
                        f"s{sender}@example.org",
                        ["info@monsite.be"],
                        f"Subject: arena {sender}-{n}\r\n\r\n{LINES}".encode(),
                    )

        threads = [threading.Thread(target=send, args=(s,)) for s in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        platform.wait_messages("monsite0001", 200)
        pid = platform.served.proc.pid
        assert len(list(Path(f"/proc/{pid}/task").iterdir())) > 3  # the pool was busy
        assert thread_arenas(pid) <= 1, Path(f"/proc/{pid}/maps").read_text()


def test_a_server_that_verified_no_signature_has_not_loaded_cryptography(
    tmp_path: Path,
) -> None:
    """`cryptography` (its Rust extension alone is some 5 MiB resident) serves the DKIM
    check of incoming mail; trusted mail is not checked, so it stays unloaded."""
    serve_env = {"COURRIEL_SMTP_WORKERS": "1"}
    with private_platform(tmp_path, serve_env=serve_env) as platform:
        platform.send("friend@example.org", ["info@monsite.be"], "trusted")
        platform.wait_message("monsite0001", b"trusted")
        maps = Path(f"/proc/{platform.served.proc.pid}/maps").read_text()
        assert "cryptography" not in maps
