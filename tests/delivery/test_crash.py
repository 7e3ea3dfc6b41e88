"""Nothing acknowledged is lost: `courriel serve` is killed with SIGKILL in the middle
of a load of concurrent sessions; after a restart every message that got "250" is in
the mailbox exactly once, and the queue resumes and delivers every forward."""

from __future__ import annotations

import re
import smtplib
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.platform import STRONG, Platform, platform_env, setup_monsite
from tests.fixtures.processes import fresh_database, make_courriel, start_serve
from tests.fixtures.sink import Sink

SESSIONS = 8
PER_SESSION = 60


@pytest.mark.slow
def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    sink = Sink().start()
    with fresh_database() as url:
        courriel = make_courriel(tmp_path, url)
        courriel.env.update(platform_env(sink))
        setup_monsite(courriel)
        courriel(
            "user",
            "create",
            "monsite.be",
            "--pass",
            STRONG,
            "--extra",
            "info",
            "--quota",
            "unlimited",
        )
        courriel("alias", "create", "monsite.be", "fwd", "--to", "copy@gmail.com")
        served = start_serve(courriel)
        acknowledged: set[str] = set()
        lock = threading.Lock()

        def session(worker: int) -> None:
            try:
                client = smtplib.SMTP("127.0.0.1", served.ports["smtp"], timeout=20)
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
        served.proc.kill()  # SIGKILL: no clean shutdown, no flush
        served.proc.wait()
        for thread in threads:
            thread.join(30)
        killed_at = len(acknowledged)
        assert 0 < killed_at < SESSIONS * PER_SESSION, "the kill did not land mid-load"

        restarted = start_serve(courriel)
        try:
            platform = Platform(courriel, restarted, sink)
            maildir = platform.maildir("monsite0001")
            ids: dict[str, int] = {}
            for path in list((maildir / "new").iterdir()) + list((maildir / "cur").iterdir()):
                match = re.search(rb"X-Test-Id: (w\d+n\d+)", path.read_bytes())
                if match:
                    ids[match.group(1).decode()] = ids.get(match.group(1).decode(), 0) + 1
            assert all(ids.get(ident) == 1 for ident in acknowledged), (
                "acknowledged messages missing or duplicated: "
                + str({i: ids.get(i) for i in acknowledged if ids.get(i) != 1})
            )
            assert all(count == 1 for count in ids.values())
            # Every acknowledged forward reaches the other provider once the queue resumes.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                forwarded = {
                    m.header("X-Test-Id")
                    for m in sink.messages
                    if m.recipients == ["copy@gmail.com"]
                }
                if acknowledged <= forwarded:
                    break
                time.sleep(0.2)
            assert acknowledged <= forwarded
        finally:
            restarted.stop()
    sink.stop()
