#!/usr/bin/env python3
"""Benchmark: Courriel's IMAP/POP3 against Dovecot from Debian, same run, same Maildirs.

    python bench/access.py [--messages 5000] [--large 50000] [--runs 5] [--downloads 5]

Fills a mailbox with N messages of 1 KiB (and a second one with the large count), copies
both Maildirs for a private Dovecot (passwd-file with the very same {ARGON2ID} hashes,
listeners on free loopback ports), warms both servers up (each builds its own index
once), then times on each server:

- mbsync: full sync of the whole mailbox into an empty local Maildir (no client fsync);
- POP3: download of every message with a raw POP3 client;
  (these two: best of --downloads runs, taken in turn on each server);
- `FETCH 1:* (UID FLAGS)` and `SEARCH SUBJECT x`, on N and on the large mailbox
  (median of --runs, raw socket client so that client parsing does not blur the figures);

and prints a table with the ratio Courriel / Dovecot (target: at most 1.0), then the
resident memory of `courriel serve` with the large mailbox selected (target < 100 MB).
Everything listens on 127.0.0.1 only; every process started is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "C0mpl3xP@ssW0rD?!"
LISTENERS = ("web", "smtp", "submission", "imap", "imaps", "pop3", "pop3s", "policy")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_kib_message(number: int) -> bytes:
    head = (
        f"From: Sender {number} <sender{number}@example.org>\r\n"
        f"To: info@monsite.be\r\nSubject: Message number {number}\r\n"
        f"Date: Thu, 09 Sep 2010 10:00:00 +0200\r\nMessage-ID: <{number}@bench>\r\n\r\n"
    ).encode()
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit bench.\r\n"
    body = (line * 20)[: 1024 - len(head) - 2] + b"\r\n"
    return head + body


def fill(maildir: Path, count: int) -> None:
    sys.path.insert(0, str(ROOT))
    from courriel.mailstore.maildir import deliver

    for number in range(count):
        deliver(maildir, one_kib_message(number), durable=False)


# --- the two servers -----------------------------------------------------------------------


class Courriel:
    def __init__(self, work: Path) -> None:
        self.data = work / "courriel"
        self.env = dict(
            os.environ,
            COURRIEL_DATA=str(self.data),
            COURRIEL_DATABASE_URL="",
            COURRIEL_GENERAL_HOSTNAME="localhost",
            PYTHONUNBUFFERED="1",
            COURRIEL_ACCESS_PLAINTEXT_ON_LOOPBACK="true",
        )
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        for section in LISTENERS:
            self.env[f"COURRIEL_{section.upper()}_ENABLED"] = "false"
        self.ports = {"imap": free_port(), "pop3": free_port()}
        for section, port in self.ports.items():
            self.env[f"COURRIEL_{section.upper()}_ENABLED"] = "true"
            self.env[f"COURRIEL_{section.upper()}_BIND"] = "127.0.0.1"
            self.env[f"COURRIEL_{section.upper()}_PORT"] = str(port)
        self.proc: subprocess.Popen[str] | None = None

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "courriel", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode:
            raise SystemExit(f"courriel {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def create_users(self, logins: list[str]) -> None:
        self.cli("init")
        self.cli("server", "add", "maximusconfessor", "maximusconfessor.all2all.org")
        self.cli(
            "domain", "create", "monsite.be", "--plan", "large", "--server", "maximusconfessor"
        )
        for login in logins:
            self.cli(
                "user",
                "create",
                "monsite.be",
                "--login",
                login,
                "--real",
                login,
                "--pass",
                PASSWORD,
                "--quota",
                "unlimited",
            )

    def maildir(self, login: str) -> Path:
        return self.data / "mail" / "monsite.be" / "homes" / login / "Maildir"

    def password_hash(self, login: str) -> str:
        import sqlite3

        with sqlite3.connect(self.data / "courriel.sqlite3") as db:
            row = db.execute(
                "SELECT password_hash FROM accounts_mailbox WHERE login = ?", (login,)
            ).fetchone()
        return row[0]

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "courriel", "serve"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "Courriel is running" in line:
                break
        else:
            raise SystemExit("courriel serve did not start")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def memory_kib(self) -> int:
        assert self.proc is not None
        return rss_kib(self.proc.pid)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Dovecot:
    def __init__(self, work: Path) -> None:
        self.dir = work / "dovecot"
        self.home = self.dir / "home"
        self.ports = {"imap": free_port(), "pop3": free_port()}
        self.config = self.dir / "dovecot.conf"

    def setup(self, hashes: dict[str, str], maildirs: dict[str, Path]) -> None:
        for sub in ("run", "state", "home"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        for login, source in maildirs.items():
            target = self.home / login / "Maildir"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source, target, symlinks=True)
        subprocess.run(["chown", "-R", "65534:65534", str(self.home)], check=True)
        (self.dir / "passwd").write_text("".join(f"{u}:{h}\n" for u, h in hashes.items()))
        self.config.write_text(f"""
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = {self.dir}/passwd
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={self.home}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.ports["imap"]}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.ports["pop3"]}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
""")

    def start(self) -> None:
        subprocess.run(["dovecot", "-c", str(self.config)], check=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.ports["imap"]), 1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("dovecot did not start: see " + str(self.dir / "dovecot.log"))

    def memory_kib(self) -> int:
        master = int((self.dir / "run" / "master.pid").read_text())
        total = 0
        for pid in [master, *children(master)]:
            total += rss_kib(pid)
        return total

    def stop(self) -> None:
        subprocess.run(
            ["dovecot", "-c", str(self.config), "stop"], check=False, capture_output=True
        )


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
                found.extend(children(int(entry.name)))
    return found


# --- clients -------------------------------------------------------------------------------


class RawImap:
    """A minimal IMAP client: commands timed end to end, responses only counted."""

    def __init__(self, port: int, login: str, password: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), 30)
        self.buffer = b""
        self.counter = 0
        self._until(b"\r\n")
        self.command(f'LOGIN {login} "{password}"')

    def _until(self, end: bytes) -> bytes:
        while not self.buffer.endswith(end) or end not in self.buffer:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed")
            self.buffer += chunk
            if self.buffer.endswith(b"\r\n") and end in self.buffer[-200:]:
                break
        data, self.buffer = self.buffer, b""
        return data

    def command(self, text: str) -> bytes:
        self.counter += 1
        tag = f"b{self.counter}".encode()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        data = bytearray()
        while True:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed")
            data += chunk
            tail = bytes(data[-300:])
            index = tail.rfind(b"\r\n" + tag + b" ")
            if (index >= 0 or (bytes(data).startswith(tag + b" "))) and tail.endswith(b"\r\n"):
                line = tail[index + 2 :] if index >= 0 else bytes(data)
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{text}: {line!r}")
                return bytes(data)

    def close(self) -> None:
        with suppress(ConnectionError, RuntimeError):
            self.command("LOGOUT")
        self.sock.close()


def time_command(port: int, login: str, command: str, runs: int) -> float:
    client = RawImap(port, login, PASSWORD)
    client.command("SELECT INBOX")
    client.command(command)  # warm-up: caches filled on both sides
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        client.command(command)
        timings.append(time.perf_counter() - start)
    client.close()
    return statistics.median(timings)


def pop3_download(port: int, login: str) -> float:
    start = time.perf_counter()
    sock = socket.create_connection(("127.0.0.1", port), 30)
    reader = sock.makefile("rb")
    reader.readline()
    sock.sendall(f"USER {login}\r\nPASS {PASSWORD}\r\n".encode())
    reader.readline()
    reply = reader.readline()
    assert reply.startswith(b"+OK"), reply
    sock.sendall(b"STAT\r\n")
    count = int(reader.readline().split()[1])
    sock.sendall(b"".join(b"RETR %d\r\n" % n for n in range(1, count + 1)))  # pipelined
    for _ in range(count):
        assert reader.readline().startswith(b"+OK")
        while reader.readline() != b".\r\n":
            pass
    sock.sendall(b"QUIT\r\n")
    reader.readline()
    sock.close()
    return time.perf_counter() - start


def mbsync_full(port: int, login: str, work: Path) -> float:
    local = Path(tempfile.mkdtemp(dir=work, prefix="mbsync-"))
    config = local / "rc"
    (local / "mail").mkdir()
    config.write_text(f"""FSync no
IMAPAccount bench
Host 127.0.0.1
Port {port}
User {login}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN PLAIN

IMAPStore remote
Account bench

MaildirStore local
Path {local}/mail/
Inbox {local}/mail/INBOX

Channel bench
Far :remote:INBOX
Near :local:INBOX
Create Near
Sync Pull
SyncState *
""")
    start = time.perf_counter()
    subprocess.run(
        ["mbsync", "-q", "-c", str(config), "bench"],
        check=True,
        cwd=local,
        env=dict(os.environ, HOME=str(local)),
    )
    elapsed = time.perf_counter() - start
    got = len(list((local / "mail" / "INBOX" / "new").iterdir())) + len(
        list((local / "mail" / "INBOX" / "cur").iterdir())
    )
    shutil.rmtree(local)
    return elapsed if got else float("nan")


@contextmanager
def running(*servers: Courriel | Dovecot) -> Iterator[None]:
    try:
        for server in servers:
            server.start()
        yield
    finally:
        for server in servers:
            server.stop()


def alternate(
    measure: Callable[[Courriel | Dovecot], float], ours: Courriel, theirs: Dovecot, runs: int
) -> tuple[float, float]:
    """Best time of each server over `runs` runs taken in turn (ours, theirs, ...)."""
    mine, peer = [], []
    for _ in range(runs):
        mine.append(measure(ours))
        peer.append(measure(theirs))
    return min(mine), min(peer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--large", type=int, default=50000)
    parser.add_argument("--runs", type=int, default=5, help="FETCH/SEARCH: median of")
    parser.add_argument("--downloads", type=int, default=5, help="mbsync/POP3: best of")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("Run as root (Dovecot's private instance needs it).")
    work = Path(tempfile.mkdtemp(prefix="courriel-bench-"))
    os.chmod(work, 0o755)
    small, large = "bench0001", "bench0002"
    ours, theirs = Courriel(work), Dovecot(work)
    try:
        print(
            f"preparing {args.messages} + {args.large} messages of 1 KiB in {work} ...",
            file=sys.stderr,
        )
        ours.create_users([small, large])
        fill(ours.maildir(small), args.messages)
        fill(ours.maildir(large), args.large)
        theirs.setup(
            {u: ours.password_hash(u) for u in (small, large)},
            {u: ours.maildir(u) for u in (small, large)},
        )
        rows: list[tuple[str, float, float, str]] = []
        with running(ours, theirs):
            servers = (("courriel", ours), ("dovecot", theirs))
            for _name, server in servers:  # each builds its index once
                for login in (small, large):
                    client = RawImap(server.ports["imap"], login, PASSWORD)
                    client.command("SELECT INBOX")
                    client.close()
            n, big = args.messages, args.large
            # Whole-mailbox downloads: runs alternate between the servers, so that a busy
            # moment of the machine falls on both alike; the best run of each counts.
            downloads: list[tuple[str, Callable[[Courriel | Dovecot], float]]] = [
                (
                    f"mbsync full sync, {n} msgs",
                    lambda s: mbsync_full(s.ports["imap"], small, work),
                ),
                (f"POP3 download, {n} msgs", lambda s: pop3_download(s.ports["pop3"], small)),
            ]
            for label, measure in downloads:
                print(f"  {label} ...", file=sys.stderr)
                mine, peer = alternate(measure, ours, theirs, args.downloads)
                rows.append((label, mine, peer, "s"))
            for count, login in ((n, small), (big, large)):
                for command in ("FETCH 1:* (UID FLAGS)", "SEARCH SUBJECT x"):
                    label = f"{command}, {count} msgs"
                    print(f"  {label} ...", file=sys.stderr)
                    mine, peer = (
                        time_command(s.ports["imap"], login, command, args.runs)
                        for s in (ours, theirs)
                    )
                    rows.append((label, mine, peer, "ms"))
            client = RawImap(ours.ports["imap"], large, PASSWORD)
            client.command("SELECT INBOX")
            client.command("FETCH 1:* (UID FLAGS)")
            memory_ours = ours.memory_kib()
            client.close()
            memory_peer = theirs.memory_kib()
        print()
        print("| measurement | Courriel | Dovecot 2.3 | ratio |")
        print("|---|---:|---:|---:|")
        for label, mine, peer, unit in rows:
            scale, digits = (1000, 1) if unit == "ms" else (1, 2)
            print(
                f"| {label} | {mine * scale:.{digits}f} {unit} | "
                f"{peer * scale:.{digits}f} {unit} | "
                f"{mine / peer:.2f} |"
            )
        print(
            f"| server memory (RSS), {args.large}-message mailbox selected | "
            f"{memory_ours / 1024:.0f} MB | {memory_peer / 1024:.0f} MB (all processes) | "
            f"target < 100 MB |"
        )
    finally:
        theirs.stop()
        ours.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
