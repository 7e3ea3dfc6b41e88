#!/usr/bin/env python3
"""Benchmark: Courriel's IMAP/POP3 against Dovecot from Debian, same run, same Maildirs.

    python bench/access.py [--messages 5000] [--medium 20000] [--large 50000] [--runs 5]
                           [--downloads 5] [--clients 10] [--seconds 15]

Fills mailboxes with messages of 1 KiB (threads of five, fifty senders, dates a few
minutes apart, so that SORT and THREAD have work to do), copies the Maildirs for a
private Dovecot (passwd-file with the very same {ARGON2ID} hashes, plain passwords for
the load run; listeners on free loopback ports), then times the same clients against
both in the same run (issue 17, "Speed and memory"):

- the first SELECT of a 50,000-message folder neither server has seen (its answer, and
  until every delivered file has moved from new/ to cur/);
- POP3 download of N messages with poplib (UIDL, then RETR each): the first session
  after start, and the best of --downloads repeated ones, with server CPU per message;
- mbsync: full sync of the mailbox into an empty local Maildir (no client fsync);
- `FETCH 1:*` of (FLAGS), (UID FLAGS), (FLAGS UID) and (ENVELOPE) on the medium and
  large mailboxes, `SEARCH SUBJECT x`, `SORT (DATE)` and `THREAD REFERENCES` (first
  and repeated) on the large one (median of --runs, raw socket client);
- APPEND of 20 MB (best of 3), with Courriel's peak resident memory during it;
- --clients clients for --seconds each selecting, fetching, storing, expunging and
  appending on one folder: commands per second;

and prints a table with the ratio Courriel / Dovecot, then the resident memory of
`courriel serve` with the large mailbox selected. Downloads alternate between the
servers so that a busy moment of the machine falls on both. Everything listens on
127.0.0.1 only; every process started is stopped at the end.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import poplib
import random
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
    """Message `number`: a thread of five every five messages, fifty senders, dates
    going back and forth a little, about 1 KiB."""
    topic, position = divmod(number, 5)
    subject = f"Topic {topic}" if position == 0 else f"Re: Topic {topic}"
    references = (
        f"References: {' '.join(f'<{topic * 5 + k}@bench>' for k in range(position))}\r\n"
        if position
        else ""
    )
    minute = (number * 7919) % 100_000
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(1_600_000_000 + minute * 60))
    head = (
        f"From: Sender {number % 50} <sender{number % 50}@example.org>\r\n"
        f"To: info@monsite.be\r\nSubject: {subject} number {number}\r\n"
        f"Date: {date}\r\nMessage-ID: <{number}@bench>\r\n{references}\r\n"
    ).encode()
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit bench.\r\n"
    body = (line * 20)[: max(0, 1024 - len(head) - 2)] + b"\r\n"
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
            # No drop to the service user: the Maildirs are filled by this script
            # (as root); speed does not depend on the uid.
            COURRIEL_GENERAL_USER="",
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

    def maildir(self, login: str) -> Path:
        return self.home / login / "Maildir"

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
    """Median of repeated runs, after a first one that fills the caches of both sides."""
    return first_and_repeated(port, login, command, runs)[1]


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


def cpu_seconds(server: Courriel | Dovecot) -> float:
    """CPU time the server has used so far: `courriel serve`'s process; Dovecot's
    processes alive now plus those its master has reaped (one per POP3 session)."""
    tick = os.sysconf("SC_CLK_TCK")

    def times(pid: int, reaped: bool) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        used = int(fields[11]) + int(fields[12])
        if reaped:
            used += int(fields[13]) + int(fields[14])
        return used / tick

    if isinstance(server, Courriel):
        assert server.proc is not None
        return times(server.proc.pid, False)
    master = int((server.dir / "run" / "master.pid").read_text())
    return times(master, True) + sum(times(pid, False) for pid in children(master))


def pop3_poplib(port: int, login: str) -> float:
    """What a leave-on-server client does: UIDL, then RETR of every message."""
    start = time.perf_counter()
    client = poplib.POP3("127.0.0.1", port, timeout=60)
    client.user(login)
    client.pass_(PASSWORD)
    _response, listing, _size = client.uidl()
    for entry in listing:
        client.retr(int(entry.split()[0]))
    client.quit()
    return time.perf_counter() - start


def first_select(server: Courriel | Dovecot, login: str) -> tuple[float, float]:
    """The time to SELECT's answer, and the time until every delivered file has left
    new/ (Courriel answers first and moves most of them after; Dovecot before). The
    next measurement starts only then, so the moves never fall on it."""
    client = RawImap(server.ports["imap"], login, PASSWORD)
    start = time.perf_counter()
    client.command("SELECT INBOX")
    answered = time.perf_counter() - start
    new = server.maildir(login) / "new"
    while any(os.scandir(new)):
        time.sleep(0.01)
    settled = time.perf_counter() - start
    client.close()
    return answered, settled


def first_and_repeated(port: int, login: str, command: str, runs: int) -> tuple[float, float]:
    """The first run of a command in a session (nothing cached for it yet in this
    session), then the median of repeated ones."""
    client = RawImap(port, login, PASSWORD)
    client.command("SELECT INBOX")
    start = time.perf_counter()
    client.command(command)
    first = time.perf_counter() - start
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        client.command(command)
        timings.append(time.perf_counter() - start)
    client.close()
    return first, statistics.median(timings)


def append_big(client: imaplib.IMAP4, data: bytes) -> float:
    """One APPEND on a session already logged in (a login may verify an Argon2 hash,
    which takes its own 64 MiB for a moment: not the APPEND's doing)."""
    start = time.perf_counter()
    typ, _ = client.append("INBOX", None, None, data)
    elapsed = time.perf_counter() - start
    assert typ == "OK"
    return elapsed


def imap_login(port: int, login: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", port, timeout=300)
    client.login(login, PASSWORD)
    return client


def peak_growth_kib(pid: int, action: Callable[[], object]) -> int:
    """How far the resident memory of `pid` rises while `action` runs (VmHWM reset)."""
    before = rss_kib(pid)
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    action()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) - before
    return 0


def load_run(port: int, login: str, clients: int, seconds: float) -> float:
    """Commands per second of `clients` sessions on one folder: SELECT, FETCH of flags
    and headers, STORE, EXPUNGE, APPEND (what devices of one family do)."""
    deadline = time.monotonic() + seconds
    counts: list[int] = []
    errors: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        client = imaplib.IMAP4("127.0.0.1", port, timeout=60)
        client.login(login, PASSWORD)
        exists = int(client.select("INBOX")[1][0])
        done = 0
        while time.monotonic() < deadline:
            choice = rng.random()
            if exists == 0 or choice < 0.05:
                typ, data = client.select("INBOX")
                exists = int(data[0])
            elif choice < 0.35:
                typ, _ = client._simple_command("FETCH", f"1:{exists}", "(UID FLAGS)")
            elif choice < 0.50:
                n = rng.randint(1, exists)
                typ, _ = client._simple_command("FETCH", str(n), "(BODY.PEEK[HEADER])")
            elif choice < 0.70:
                n = rng.randint(1, exists)
                typ, _ = client._simple_command("STORE", str(n), "+FLAGS.SILENT", "(\\Seen)")
            elif choice < 0.78:
                n = rng.randint(1, exists)
                typ, _ = client._simple_command("STORE", str(n), "+FLAGS.SILENT", "(\\Deleted)")
            elif choice < 0.85:
                typ, _ = client._simple_command("EXPUNGE")
            else:
                typ, _ = client.append("INBOX", None, None, one_kib_message(rng.randint(0, 99)))
            if typ != "OK":
                errors.append(typ)
            responses = client.untagged_responses
            expunged = responses.pop("EXPUNGE", [])
            known = responses.pop("EXISTS", [])
            exists = int(known[-1]) if known else exists - len(expunged)
            responses.clear()
            done += 1
        client.logout()
        counts.append(done)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    if errors:
        print(f"    {len(errors)} error replies during the load run", file=sys.stderr)
    return sum(counts) / elapsed


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
    parser.add_argument("--medium", type=int, default=20000)
    parser.add_argument("--large", type=int, default=50000)
    parser.add_argument("--runs", type=int, default=5, help="FETCH/SORT/...: median of")
    parser.add_argument("--downloads", type=int, default=5, help="mbsync/POP3: best of")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("Run as root (Dovecot's private instance needs it).")
    work = Path(tempfile.mkdtemp(prefix="courriel-bench-"))
    os.chmod(work, 0o755)
    users = {  # login: messages
        "bench0001": args.messages,  # mbsync
        "bench0002": args.messages,  # POP3 (untouched until its first session)
        "bench0003": args.medium,
        "bench0004": args.large,
        "bench0005": args.large,  # first SELECT (untouched until then)
        "bench0006": 500,  # the load run
    }
    ours, theirs = Courriel(work), Dovecot(work)
    try:
        print(f"preparing {sum(users.values())} messages in {work} ...", file=sys.stderr)
        ours.create_users(list(users))
        filled: dict[int, Path] = {}
        for login, count in users.items():
            if count in filled:
                target = ours.maildir(login)
                shutil.rmtree(target)
                shutil.copytree(filled[count], target, symlinks=True)
            else:
                fill(ours.maildir(login), count)
                filled[count] = ours.maildir(login)
        hashes = {u: ours.password_hash(u) for u in users}
        hashes["bench0006"] = "{PLAIN}" + PASSWORD  # load run: no Argon2 on either side
        theirs.setup(hashes, {u: ours.maildir(u) for u in users})
        rows: list[tuple[str, float, float, str]] = []
        notes: list[str] = []

        def both(label: str, measure: Callable[[Courriel | Dovecot], float], unit: str) -> None:
            print(f"  {label} ...", file=sys.stderr)
            rows.append((label, measure(ours), measure(theirs), unit))

        with running(ours, theirs):
            print("  first SELECT ...", file=sys.stderr)
            (mine, mine_settled), (peer, peer_settled) = (
                first_select(ours, "bench0005"),
                first_select(theirs, "bench0005"),
            )
            rows.append((f"first SELECT, {args.large} msgs never opened", mine, peer, "ms"))
            rows.append(
                (
                    f"... until all {args.large} files are in cur/",
                    mine_settled,
                    peer_settled,
                    "ms",
                )
            )
            both(
                f"POP3 download (poplib, UIDL + RETR), {args.messages} msgs, first session",
                lambda s: pop3_poplib(s.ports["pop3"], "bench0002"),
                "s",
            )
            cpu = {}
            for name, server in (("courriel", ours), ("dovecot", theirs)):
                before = cpu_seconds(server)
                best = min(
                    pop3_poplib(server.ports["pop3"], "bench0002") for _ in range(args.downloads)
                )
                cpu[name] = (cpu_seconds(server) - before) / (args.downloads * args.messages)
                cpu[name + " time"] = best
            rows.append(
                (
                    f"POP3 download (poplib), {args.messages} msgs, repeated (best of"
                    f" {args.downloads})",
                    cpu["courriel time"],
                    cpu["dovecot time"],
                    "s",
                )
            )
            rows.append(("POP3 server CPU per message", cpu["courriel"], cpu["dovecot"], "us"))
            print("  mbsync ...", file=sys.stderr)
            mine, peer = alternate(
                lambda s: mbsync_full(s.ports["imap"], "bench0001", work),
                ours,
                theirs,
                args.downloads,
            )
            rows.append((f"mbsync full sync, {args.messages} msgs", mine, peer, "s"))
            for server in (ours, theirs):  # the big folders: index built once
                for login in ("bench0003", "bench0004"):
                    client = RawImap(server.ports["imap"], login, PASSWORD)
                    client.command("SELECT INBOX")
                    client.close()
            for count, login in ((args.medium, "bench0003"), (args.large, "bench0004")):
                for items in ("(FLAGS)", "(UID FLAGS)", "(FLAGS UID)", "(ENVELOPE)"):
                    both(
                        f"FETCH 1:* {items}, {count} msgs",
                        lambda s, i=items, u=login: time_command(  # type: ignore[misc]
                            s.ports["imap"], u, f"FETCH 1:* {i}", args.runs
                        ),
                        "ms",
                    )
            for command in (
                "SEARCH SUBJECT x",
                "SORT (DATE) UTF-8 ALL",
                "THREAD REFERENCES UTF-8 ALL",
            ):
                label = command.split(" UTF-8")[0]
                print(f"  {label} ...", file=sys.stderr)
                mine_first, mine_again = first_and_repeated(
                    ours.ports["imap"], "bench0004", command, args.runs
                )
                peer_first, peer_again = first_and_repeated(
                    theirs.ports["imap"], "bench0004", command, args.runs
                )
                rows.append((f"{label}, {args.large} msgs, first", mine_first, peer_first, "ms"))
                rows.append((f"{label}, {args.large} msgs, repeated", mine_again, peer_again, "ms"))
            big = one_kib_message(1)[:200] + b"x" * 76 + b"\r\n"
            big = big * (20_000_000 // len(big))
            print("  APPEND 20 MB ...", file=sys.stderr)
            assert ours.proc is not None
            growth: list[int] = []
            times_ours, times_peer = [], []
            mine_client = imap_login(ours.ports["imap"], "bench0006")
            peer_client = imap_login(theirs.ports["imap"], "bench0006")
            for _ in range(3):
                elapsed: list[float] = []
                growth.append(
                    peak_growth_kib(
                        ours.proc.pid,
                        lambda e=elapsed: e.append(append_big(mine_client, big)),  # type: ignore[misc]
                    )
                )
                times_ours.append(elapsed[0])
                times_peer.append(append_big(peer_client, big))
            mine_client.logout()
            peer_client.logout()
            rows.append(("APPEND of 20 MB (best of 3)", min(times_ours), min(times_peer), "s"))
            notes.append(
                f"Courriel's resident memory during the 20 MB APPEND: +{max(growth) / 1024:.1f} MB"
                " at most (target < 16 MB)"
            )
            print(f"  {args.clients} clients for {args.seconds:.0f} s ...", file=sys.stderr)
            rows.append(
                (
                    f"{args.clients} clients on one folder, commands per second (higher is better)",
                    load_run(ours.ports["imap"], "bench0006", args.clients, args.seconds),
                    load_run(theirs.ports["imap"], "bench0006", args.clients, args.seconds),
                    "/s",
                )
            )
            client = RawImap(ours.ports["imap"], "bench0004", PASSWORD)
            client.command("SELECT INBOX")
            client.command("FETCH 1:* (UID FLAGS)")
            memory_ours = ours.memory_kib()
            client.close()
            memory_peer = theirs.memory_kib()
        load = os.getloadavg()
        print()
        print("| measurement | Courriel | Dovecot 2.3 | ratio |")
        print("|---|---:|---:|---:|")
        for label, mine, peer, unit in rows:
            if unit == "ms":
                shown = (f"{mine * 1000:.1f} ms", f"{peer * 1000:.1f} ms")
            elif unit == "us":
                shown = (f"{mine * 1e6:.0f} µs", f"{peer * 1e6:.0f} µs")
            elif unit == "/s":
                shown = (f"{mine:.0f}/s", f"{peer:.0f}/s")
            else:
                shown = (f"{mine:.2f} s", f"{peer:.2f} s")
            ratio = mine / peer if peer else float("nan")
            print(f"| {label} | {shown[0]} | {shown[1]} | {ratio:.2f} |")
        print(
            f"| server memory (RSS), {args.large}-message mailbox selected | "
            f"{memory_ours / 1024:.0f} MB | {memory_peer / 1024:.0f} MB (all processes) | |"
        )
        print()
        for note in notes:
            print(f"- {note}")
        print(f"- load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    finally:
        theirs.stop()
        ours.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
