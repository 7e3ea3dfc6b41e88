#!/usr/bin/env python3
"""SMTP ingest benchmark: Courriel against Postfix, same machine, same run.

Both servers receive the same load from Postfix's own load generator (`smtp-source`,
a C program, so the client costs little): N messages of 1 KiB and of 100 KiB over 1
and 8 concurrent sessions, all to one virtual mailbox, with durable delivery on
(Courriel: fsync of the file and of `new/`; Postfix: its queue file fsync, then the
`virtual` agent's Maildir delivery). A row's time runs from the first connection
until the last message is in the Maildir. Server CPU per message comes from
/proc (Postfix: master and every child, including exited ones).

Then resident memory of `courriel serve` with 100 concurrent sessions.

    python bench/smtp_ingest.py [--messages 5000] [--big 1000] [--quick]

Nothing leaves 127.0.0.1: Postfix's default transport is an error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK = os.sysconf("SC_CLK_TCK")
PASSWORD = "C0mpl3xP@ssW0rD?!"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int, children_of: bool = False) -> float:
    """utime+stime of a process (and, for Postfix, its waited-for and live children)."""

    def stat(p: int) -> list[str]:
        with open(f"/proc/{p}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()

    fields = stat(pid)
    total = (int(fields[11]) + int(fields[12])) / CLK
    if children_of:
        total += (int(fields[13]) + int(fields[14])) / CLK
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    child = stat(int(entry))
                except OSError:
                    continue
                if int(child[1]) == pid:
                    total += (int(child[11]) + int(child[12])) / CLK
    return total


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def count(maildir: Path) -> int:
    try:
        return len(os.listdir(maildir / "new")) + len(os.listdir(maildir / "cur"))
    except FileNotFoundError:
        return 0


class Courriel:
    name = "Courriel"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.env = dict(os.environ)
        self.env.update(
            {
                "COURRIEL_DATA": str(base / "data"),
                "COURRIEL_DATABASE_URL": "",
                "COURRIEL_GENERAL_HOSTNAME": "bench.courriel.test",
                "COURRIEL_SMTP_BIND": "127.0.0.1",
                "COURRIEL_SMTP_PORT": str(self.port),
                "COURRIEL_SMTP_MAX_CONNECTIONS_PER_IP": "0",
                "COURRIEL_SMTP_MAX_RECIPIENTS": "1000",
                "COURRIEL_WEB_ENABLED": "0",
                "COURRIEL_SUBMISSION_ENABLED": "0",
                "COURRIEL_IMAP_ENABLED": "0",
                "COURRIEL_IMAPS_ENABLED": "0",
                "COURRIEL_POP3_ENABLED": "0",
                "COURRIEL_POP3S_ENABLED": "0",
                "COURRIEL_POLICY_ENABLED": "0",
                "COURRIEL_QUEUE_TRANSPORT": "*=127.0.0.1:9",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env.pop("COURRIEL_CONFIG", None)
        self.maildir = base / "data" / "mail" / "monsite.be" / "homes" / "monsite0001" / "Maildir"

    def cli(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "courriel", *args],
            env=self.env,
            check=True,
            capture_output=True,
            cwd=ROOT,
        )

    def start(self) -> None:
        self.cli("domain", "create", "monsite.be", "--plan", "large")
        self.cli(
            "user",
            "create",
            "monsite.be",
            "--real",
            "Info",
            "--pass",
            PASSWORD,
            "--extra",
            "info",
            "--quota",
            "unlimited",
        )
        self.log = open(self.base / "serve.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "courriel", "serve"],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while "Courriel is running" not in (self.base / "serve.log").read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    "courriel serve did not start:\n" + (self.base / "serve.log").read_text()
                )
            time.sleep(0.1)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid, children_of=True)  # with its SMTP workers

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self.log.close()


POSTFIX_MAIN = """\
compatibility_level = 3.6
queue_directory = {base}/spool
data_directory = {base}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.postfix.test
mydomain = postfix.test
myorigin = postfix.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
default_transport = error:this benchmark instance sends nothing outside
relay_transport = error:this benchmark instance sends nothing outside
virtual_mailbox_domains = monsite.be
virtual_mailbox_base = {base}/mail
virtual_mailbox_maps = texthash:{base}/etc/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 100
virtual_mailbox_limit = 0
message_size_limit = 52428800
maillog_file = {base}/maillog
maillog_file_prefixes = {base}
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
smtputf8_enable = yes
biff = no
default_process_limit = 100
"""


class Postfix:
    name = "Postfix"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.maildir = base / "mail" / "monsite.be" / "info" / "Maildir"

    def start(self) -> None:
        for sub in ("etc", "spool", "data", "mail"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.base / "data", "postfix")
        shutil.chown(self.base / "mail", 65534, 65534)
        os.chmod(self.base, 0o755)
        etc = self.base / "etc"
        (etc / "main.cf").write_text(POSTFIX_MAIN.format(base=self.base))
        (etc / "vmailbox").write_text("info@monsite.be monsite.be/info/Maildir/\n")
        master = Path("/etc/postfix/master.cf").read_text().splitlines()
        lines = []
        for line in master:
            if line.startswith("smtp ") and line.split()[1] == "inet":
                line = f"127.0.0.1:{self.port} inet n - n - - smtpd"
            lines.append(line)
        (etc / "master.cf").write_text("\n".join(lines) + "\n")
        subprocess.run(["postfix", "-c", str(etc), "start"], check=True, capture_output=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("Postfix did not start") from None
                time.sleep(0.2)
        self.master_pid = int((self.base / "spool" / "pid" / "master.pid").read_text().split()[0])

    def cpu(self) -> float:
        return cpu_seconds(self.master_pid, children_of=True)

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.base / "etc"), "stop"], capture_output=True)


def run_row(server: Courriel | Postfix, messages: int, size: int, sessions: int) -> dict:
    before = count(server.maildir)
    cpu_before = server.cpu()
    start = time.monotonic()
    subprocess.run(
        [
            "smtp-source",
            "-d",
            "-s",
            str(sessions),
            "-m",
            str(messages),
            "-l",
            str(size),
            "-f",
            "load@example.org",
            "-t",
            "info@monsite.be",
            f"127.0.0.1:{server.port}",
        ],
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 600
    while count(server.maildir) < before + messages:
        if time.monotonic() > deadline:
            raise SystemExit(f"{server.name}: only {count(server.maildir) - before} delivered")
        time.sleep(0.02)
    elapsed = time.monotonic() - start
    cpu = server.cpu() - cpu_before
    return {"rate": messages / elapsed, "cpu_ms": cpu * 1000 / messages, "seconds": elapsed}


def memory_with_sessions(server: Courriel, sessions: int = 100) -> float:
    socks = []
    try:
        for _ in range(sessions):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            stream = sock.makefile("rb")
            stream.readline()
            sock.sendall(
                b"EHLO load.example.org\r\nMAIL FROM:<load@example.org>\r\n"
                b"RCPT TO:<info@monsite.be>\r\nDATA\r\n"
            )
            socks.append((sock, stream))
        for sock, stream in socks:
            while not stream.readline().startswith(b"354"):
                pass
            sock.sendall(b"Subject: held open\r\n\r\n" + b"x" * 70 + b"\r\n")
        time.sleep(1)
        return rss_mb(server.proc.pid)
    finally:
        for sock, _ in socks:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="1 KiB messages per row")
    parser.add_argument("--big", type=int, default=1000, help="100 KiB messages per row")
    parser.add_argument("--quick", action="store_true", help="a tenth of the messages")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.big = args.messages // 10, args.big // 10
    for tool in ("smtp-source", "postfix"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: run scripts/setup")
    base = Path(tempfile.mkdtemp(prefix="courriel-bench-smtp-"))
    os.chmod(base, 0o755)
    courriel, postfix = Courriel(base / "courriel"), Postfix(base / "postfix")
    (base / "courriel").mkdir()
    courriel.start()
    postfix.start()
    rows = []
    try:
        for size, label, messages in (
            (1024, "1 KiB", args.messages),
            (102400, "100 KiB", args.big),
        ):
            for sessions in (1, 8):
                results = {}
                for server in (postfix, courriel):
                    results[server.name] = run_row(server, messages, size, sessions)
                rows.append((label, sessions, messages, results))
                ours, theirs = results["Courriel"], results["Postfix"]
                ratio = ours["rate"] / theirs["rate"]
                print(
                    f"{label:>7} x {sessions} sessions: Courriel {ours['rate']:7.1f} msg/s, "
                    f"Postfix {theirs['rate']:7.1f} msg/s, ratio {ratio:.2f}",
                    flush=True,
                )
        memory = memory_with_sessions(courriel)
    finally:
        courriel.stop()
        postfix.stop()
    print()
    print(
        "| message | sessions | messages | Courriel msg/s | Postfix msg/s | ratio | "
        "Courriel CPU ms/msg | Postfix CPU ms/msg |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, sessions, messages, results in rows:
        ours, theirs = results["Courriel"], results["Postfix"]
        print(
            f"| {label} | {sessions} | {messages} | {ours['rate']:.0f} | {theirs['rate']:.0f} | "
            f"{ours['rate'] / theirs['rate']:.2f} | {ours['cpu_ms']:.2f} | {theirs['cpu_ms']:.2f} |"
        )
    print()
    print(f"Resident memory of courriel serve with 100 concurrent SMTP sessions: {memory:.0f} MB")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
