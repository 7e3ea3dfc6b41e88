"""A mailbox download through a real `courriel serve` (uvicorn, TLS) is sent while it
is made: the owner signs in to the panel and downloads a 48 MB mailbox, and the
server's memory stays flat (Django's ASGI handler would otherwise read the whole
download into a list before sending a byte)."""

from __future__ import annotations

import re
import threading
import time

import pytest
import requests
import urllib3

from courriel.mailstore.maildir import deliver
from tests.fixtures.accounts import STRONG
from tests.fixtures.processes import Courriel, start_serve

pytestmark = pytest.mark.slow
MESSAGES = 48
MB = 1024 * 1024


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def sign_in(session: requests.Session, base: str, login: str, password: str) -> None:
    form = session.get(base + "/login/", verify=False, timeout=30).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    signed = session.post(
        base + "/login/",
        {"csrfmiddlewaretoken": token, "username": login, "password": password},
        headers={"Referer": base + "/login/"},
        verify=False,
        timeout=30,
        allow_redirects=False,
    )
    assert signed.status_code == 302, signed.text


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_a_big_mailbox_download_keeps_the_server_memory_flat(courriel: Courriel) -> None:
    courriel("init")
    courriel("domain", "create", "monsite.be", "--plan", "recommended", "--pass", STRONG)
    maildir = courriel.data / "mail" / "monsite.be" / "homes" / "monsite" / "Maildir"
    line = b"x" * 998 + b"\r\n"
    for n in range(MESSAGES):
        body = line * (MB // len(line))
        deliver(maildir, f"Subject: part {n}\r\n\r\n".encode() + body, durable=False)
    urllib3.disable_warnings()
    served = start_serve(courriel)
    try:
        with requests.Session() as session:
            sign_in(session, served.web_url, "monsite", STRONG)
            session.get(served.web_url + "/me/", verify=False, timeout=30)  # warm up
            pid = served.proc.pid
            before = rss(pid)
            peak = before
            done = threading.Event()

            def watch() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, rss(pid))
                    time.sleep(0.01)

            watcher = threading.Thread(target=watch)
            watcher.start()
            received = chunks = 0
            try:
                with session.get(
                    served.web_url + "/me/download?format=mbox",
                    verify=False,
                    timeout=60,
                    stream=True,
                ) as response:
                    assert response.status_code == 200
                    assert response.headers["Content-Type"] == "application/mbox"
                    assert "Content-Length" not in response.headers  # sent as it is made
                    for chunk in response.iter_content(64 * 1024):
                        received += len(chunk)
                        chunks += 1
            finally:
                done.set()
                watcher.join()
        assert received > MESSAGES * MB * 0.99, received
        assert chunks > 100
        growth = peak - before
        assert growth < 16 * MB, f"server memory grew by {growth / MB:.1f} MB for {received:,}"
        assert served.proc.poll() is None
    finally:
        served.stop()
