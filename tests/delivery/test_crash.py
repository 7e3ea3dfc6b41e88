"""Nothing acknowledged is lost: `courriel serve` is killed with SIGKILL in the middle
of a load of concurrent sessions; after a restart every message that got "250" is in
the mailbox exactly once, and the queue resumes and delivers every forward."""

from __future__ import annotations

import re
import smtplib
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.fixtures.platform import private_platform

SESSIONS = 8
PER_SESSION = 60


@pytest.mark.slow
def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    with private_platform(tmp_path, users=(("info", ("--quota", "unlimited")),)) as platform:
        platform.courriel("alias", "create", "monsite.be", "fwd", "--to", "copy@gmail.com")
        acknowledged: set[str] = set()
        lock = threading.Lock()
        port = platform.port("smtp")

        def session(worker: int) -> None:
            try:
                client = smtplib.SMTP("127.0.0.1", port, timeout=60)
                client.ehlo("load.example.org")
                for n in range(PER_SESSION):
                    ident = f"w{worker}n{n}"
                    body = (
                        f"From: load@example.org\r\nSubject: {ident}\r\nX-Test-Id: {ident}"
                        f"\r\n\r\nmessage {ident}\r\n"
                    ).encode()
                    client.sendmail("load@example.org", ["info@monsite.be", "fwd@monsite.be"], body)
                    with lock:
                        acknowledged.add(ident)
            except (OSError, smtplib.SMTPException):
                return  # the server died under us: what was acknowledged is recorded

        threads = [threading.Thread(target=session, args=(w,)) for w in range(SESSIONS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < SESSIONS * PER_SESSION // 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        platform.served.proc.kill()  # SIGKILL: no clean shutdown, no flush
        platform.served.proc.wait()
        for thread in threads:
            thread.join(30)
        assert 0 < len(acknowledged) < SESSIONS * PER_SESSION, "the kill did not land mid-load"

        platform.restart()
        maildir = platform.maildir("monsite0001")
        # The SMTP workers of the killed server end on their own (SIGTERM from the
        # kernel) and finish their part; the new server replayed the rest.
        deadline = time.monotonic() + 30
        while True:
            ids = Counter(
                match.group(1).decode()
                for path in [*(maildir / "new").iterdir(), *(maildir / "cur").iterdir()]
                if (match := re.search(rb"X-Test-Id: (w\d+n\d+)", path.read_bytes()))
            )
            if acknowledged <= set(ids) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        missing = sorted(acknowledged - set(ids))
        assert not missing, f"acknowledged messages missing: {missing}"
        assert all(count == 1 for count in ids.values()), "a message was delivered twice"
        # Every acknowledged forward reaches the other provider once the queue resumes.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            forwarded = {
                m.header("X-Test-Id")
                for m in platform.sink.messages
                if m.recipients == ["copy@gmail.com"]
            }
            if acknowledged <= forwarded:
                break
            time.sleep(0.2)
        assert acknowledged <= forwarded
