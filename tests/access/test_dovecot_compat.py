"""The Maildirs stay Dovecot's: after Courriel has given UIDs, flags and keywords,
Dovecot from Debian serves the same Maildir with the same UIDVALIDITY, UIDs, flags and
keywords (so a provider can move to Dovecot without clients downloading again)."""

from __future__ import annotations

import imaplib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.mailstore import index as folder_index
from courriel.mailstore.layout import create_maildir
from courriel.mailstore.maildir import deliver
from tests.access.conftest import message
from tests.fixtures.net import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("dovecot") is None or os.geteuid() != 0, reason="needs Dovecot and root"
    ),
]


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory Dovecot's unprivileged processes can traverse (pytest's are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="courriel-dovecot-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_dovecot_sees_our_uids_flags_and_keywords(open_dir: Path) -> None:
    tmp_path = open_dir
    home = tmp_path / "home" / "info"
    maildir = home / "Maildir"
    create_maildir(maildir)
    for number in range(4):
        deliver(maildir, message(f"Message {number}"), durable=False)
    folder = folder_index.FolderIndex(maildir, maildir)
    folder.claim_new()
    first, second = folder.by_uid[1], folder.by_uid[2]
    folder.set_info(second, folder.letters(["\\Seen", "$Important"], create=True), 0)
    folder.expunge([first], 0)
    expected = {uid: sorted(folder.flags(folder.by_uid[uid])) for uid in folder.uids}
    validity = folder.uidvalidity
    assert (maildir / "courriel-modseq").is_file()  # our CONDSTORE file, beside Dovecot's

    port = free_port()
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "passwd").write_text("info:{PLAIN}secret-password\n")
    config = tmp_path / "dovecot.conf"
    config.write_text(f"""base_dir = {run}
state_dir = {tmp_path}/state
log_path = {tmp_path}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
mail_location = maildir:~/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = {tmp_path}/passwd
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={tmp_path}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")
    subprocess.run(["chown", "-R", "65534:65534", str(tmp_path / "home")], check=True)
    subprocess.run(["dovecot", "-c", str(config)], check=True)
    try:
        client = None
        for _ in range(100):
            try:
                client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
                break
            except OSError:
                time.sleep(0.1)
        assert client is not None
        client.login("info", "secret-password")
        client.select("INBOX")
        assert int(client.response("UIDVALIDITY")[1][0]) == validity
        _typ, data = client.uid("FETCH", "1:*", "(UID FLAGS)")
        seen = {}
        for line in data:
            text = line.decode()
            uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
            flags = text.split("FLAGS (")[1].split(")")[0].split()
            seen[uid] = sorted(f for f in flags if f != "\\Recent")
        assert seen == expected
        # Dovecot takes our file for nothing (no folder), and keeps its own mod-sequences.
        names = client.list()[1]
        assert names and not any(b"modseq" in name for name in names), names
        client.select("INBOX")
        assert client.uid("STORE", "2", "+FLAGS", "(\\Flagged)")[0] == "OK"
        client.logout()
    finally:
        subprocess.run(["dovecot", "-c", str(config), "stop"], check=False)
