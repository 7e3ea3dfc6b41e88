"""Real mail clients from Debian against `courriel serve`: mbsync (isync) syncing both
ways, offlineimap3, fetchmail over POP3 (with and without keep) and mutt in batch mode.
Mail arrives the way the SMTP side stores it (`maildir.deliver`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from courriel.mailstore.maildir import create_folder
from tests.access.conftest import Service, message
from tests.access.differential.runner import big_message

pytestmark = pytest.mark.slow


def run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOME=str(cwd))
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _without_tuid(data: bytes) -> bytes:
    """mbsync stores LF line ends and adds its X-TUID header locally."""
    return re.sub(rb"X-TUID: \S+\n", b"", data).replace(b"\n", b"\r\n")


def run_in_terminal(args: list[str], cwd: Path, timeout: float = 60) -> str:
    """Run a full-screen program (mutt) on a pseudo-terminal until it exits."""
    import pty
    import select
    import time

    master, slave = pty.openpty()
    env = dict(os.environ, HOME=str(cwd), TERM="xterm", COLUMNS="100", LINES="30")
    proc = subprocess.Popen(
        args, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True
    )
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    output += os.read(master, 65536)
                except OSError:
                    break
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    finally:
        os.close(master)
    return output.decode("utf-8", "replace")


def files(folder: Path) -> list[Path]:
    return [p for sub in ("cur", "new") for p in (folder / sub).iterdir()]


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="isync is not installed")
def test_mbsync_syncs_both_ways(service: Service, tmp_path: Path) -> None:
    for index in range(3):
        service.deliver(message(f"Message {index}"))
    local = tmp_path / "local"
    local.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"""IMAPAccount courriel
Host 127.0.0.1
Port {service.ports["imaps"]}
User {service.login}
Pass {service.password}
SSLType IMAPS
CertificateFile {service.cert}

IMAPStore remote
Account courriel

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
Sync All
"""
    )
    run(["mbsync", "-c", str(config), "-a"], tmp_path)
    inbox = files(local / "INBOX")
    # mbsync keeps LF line ends locally; every message arrived whole.
    assert sorted(_without_tuid(p.read_bytes()) for p in inbox) == sorted(
        message(f"Message {i}") for i in range(3)
    )
    assert (local / "Sent" / "cur").is_dir() and (local / "Trash").is_dir()

    # Flags go up: the user reads one message; a sent message is uploaded.
    first = inbox[0]
    base = first.name.split(":")[0]
    first.rename(local / "INBOX" / "cur" / f"{base}:2,S")
    sent = message("Sent from the laptop")
    (local / "Sent" / "cur" / "1700000000.1.laptop:2,S").write_bytes(sent)
    # New mail comes down.
    service.deliver(message("Arrived later"))
    run(["mbsync", "-c", str(config), "-a"], tmp_path)
    server_inbox = files(service.maildir)
    assert len(server_inbox) == 4
    assert sum(1 for p in server_inbox if p.name.endswith(":2,S")) == 1
    uploaded = [p.read_bytes() for p in files(service.maildir / ".Sent")]
    assert len(uploaded) == 1 and b"Subject: Sent from the laptop\r\n" in uploaded[0]
    assert any(b"Subject: Arrived later" in p.read_bytes() for p in files(local / "INBOX"))

    # Deleting locally expunges on the server, and the quota follows.
    victim = files(local / "INBOX")[0]
    victim.unlink()
    run(["mbsync", "-c", str(config), "-a"], tmp_path)
    assert len(files(service.maildir)) == 3

    # Issue 17: a 150 KB message uploaded (it used to end mbsync with status 1), and a
    # Projets/2024 tree whose parent exists only as a path, made on the server by
    # another program (no .Projets directory) and on the laptop.
    big = big_message(150_000).replace(b"\r\n", b"\n")
    (local / "Sent" / "cur" / "1700000001.2.laptop:2,S").write_bytes(big)
    create_folder(service.maildir, "Projets/2024")
    service.deliver(message("Planning 2024"), folder="Projets/2024")
    laptop = local / "Clients" / "2024"
    for sub in ("cur", "new", "tmp"):
        (laptop / sub).mkdir(parents=True)
    (laptop / "cur" / "1700000002.3.laptop:2,S").write_bytes(message("Client file"))
    run(["mbsync", "-c", str(config), "-a"], tmp_path)
    uploaded = [
        re.sub(rb"X-TUID: \S+\r\n", b"", p.read_bytes()) for p in files(service.maildir / ".Sent")
    ]
    assert big.replace(b"\n", b"\r\n") in uploaded  # mbsync adds X-TUID while uploading
    assert not (service.maildir / ".Projets").exists()  # still only a path on the server
    pulled = files(local / "Projets" / "2024")
    assert len(pulled) == 1 and b"Planning 2024" in pulled[0].read_bytes()
    pushed = files(service.maildir / ".Clients.2024")
    assert len(pushed) == 1 and b"Client file" in pushed[0].read_bytes()
    run(["mbsync", "-c", str(config), "-a"], tmp_path)  # and again: nothing to do, no error


@pytest.mark.skipif(shutil.which("offlineimap") is None, reason="offlineimap3 is not installed")
def test_offlineimap_syncs(service: Service, tmp_path: Path) -> None:
    service.deliver(message("For offlineimap"))
    service.deliver(message("In the archive"), folder="Archive")
    config = tmp_path / "offlineimaprc"
    config.write_text(
        f"""[general]
accounts = courriel
metadata = {tmp_path}/meta

[Account courriel]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {tmp_path}/mail

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {service.ports["imaps"]}
remoteuser = {service.login}
remotepass = {service.password}
ssl = yes
sslcacertfile = {service.cert}
"""
    )
    # Issue 17: a folder whose parent exists only as a path (offlineimap used to abort
    # with "Error SELECTing mailbox 'Archives'").
    create_folder(service.maildir, "Archives/X")
    service.deliver(message("Filed away"), folder="Archives/X")
    run(["offlineimap", "-c", str(config), "-o", "-u", "quiet"], tmp_path)
    assert [b"Filed away" in p.read_bytes() for p in files(tmp_path / "mail" / "Archives.X")] == [
        True
    ] or [b"Filed away" in p.read_bytes() for p in files(tmp_path / "mail" / "Archives" / "X")] == [
        True
    ]
    inbox = [p.read_bytes() for p in files(tmp_path / "mail" / "INBOX")]
    assert [m.replace(b"\n", b"\r\n") for m in inbox] == [message("For offlineimap")]
    archived = files(tmp_path / "mail" / "Archive")
    assert len(archived) == 1 and b"In the archive" in archived[0].read_bytes()
    # A message written locally is uploaded on the next run.
    target = tmp_path / "mail" / "Drafts" / "cur"
    (target / "1700000000_0.1.laptop,FMD5=x:2,D").write_bytes(message("A draft"))
    run(["offlineimap", "-c", str(config), "-o", "-u", "quiet"], tmp_path)
    drafts = files(service.maildir / ".Drafts")
    assert len(drafts) == 1 and b"A draft" in drafts[0].read_bytes()


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail is not installed")
@pytest.mark.parametrize(("keep", "implicit_tls"), [(True, False), (False, False), (True, True)])
def test_fetchmail_over_pop3(
    service: Service, tmp_path: Path, keep: bool, implicit_tls: bool
) -> None:
    """POP3 with STLS (port 110 style) and POP3S (implicit TLS, port 995 style)."""
    for index in range(3):
        service.deliver(message(f"Fetched {index}", body=".leading dot\r\nline"))
    out = tmp_path / "fetched.mbox"
    rc = tmp_path / "fetchmailrc"
    port = service.ports["pop3s" if implicit_tls else "pop3"]
    tls = "ssl " if implicit_tls else ""
    rc.write_text(
        f"poll localhost protocol pop3 port {port} "
        f"user '{service.login}' there with password '{service.password}' is 'me' here "
        f"{tls}sslproto tls1.2+ sslcertck sslcertfile '{service.cert}' "
        f"{'keep' if keep else 'nokeep'} mda \"/bin/sh -c 'cat >> {out}'\"\n"
    )
    rc.chmod(0o600)
    run(
        ["fetchmail", "-f", str(rc), "--nosyslog", "-v", "--pidfile", str(tmp_path / "pid")],
        tmp_path,
    )
    text = out.read_bytes()
    assert text.count(b"Subject: Fetched") == 3 and b"\n.leading dot" in text
    left = files(service.maildir)
    assert len(left) == (3 if keep else 0)


@pytest.mark.skipif(shutil.which("mutt") is None, reason="mutt is not installed")
def test_mutt_reads_a_message_in_batch_mode(service: Service, tmp_path: Path) -> None:
    service.deliver(message("Read by mutt", body="Mutt shows this body."))
    muttrc = tmp_path / "muttrc"
    muttrc.write_text(
        f"""set folder="imap://{service.login}@127.0.0.1:{service.ports["imap"]}/"
set spoolfile="+INBOX"
set imap_pass="{service.password}"
set ssl_starttls=yes
set ssl_force_tls=yes
set certificate_file="{service.cert}"
set header_cache=""
set message_cachedir=""
set wait_key=no
set quit=yes
"""
    )
    out = tmp_path / "read.txt"
    folder = f"imap://{service.login}@127.0.0.1:{service.ports['imap']}/INBOX"
    action = f"push '<pipe-message>cat > {out}<enter><quit>'"
    transcript = run_in_terminal(
        ["mutt", "-n", "-F", str(muttrc), "-f", folder, "-e", action], tmp_path
    )
    assert "Mutt shows this body." in out.read_text(), transcript
