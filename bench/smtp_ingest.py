#!/usr/bin/env python3
"""SMTP ingest benchmark: Courriel against Postfix, same machine, same run, measured
the way a third party measures it.

Load: Postfix's own generator, `smtp-source -l SIZE -m N -s SESSIONS`, at its default
of **a new connection for every message** (like most senders on the Internet), N
messages of 1 KiB and of 100 KiB over 1 and 8 concurrent sessions, all to one mailbox.

Servers, each at its defaults:
- Postfix 3.7, a private instance (`postfix -c DIR`): the `virtual` agent delivers
  into a Maildir; in_flow_delay, queue-file fsync and Maildir-file fsync as shipped;
- `courriel serve` with every listener on (web panel, SMTP, submission, IMAP(S),
  POP3(S), policy service), greylisting off, one mailbox with an unlimited quota.

A run's clock starts with the first connection and stops when the Maildir's `new/` +
`cur/` hold all N files: the mail is delivered and visible, not merely acknowledged.
Server CPU is the whole process tree's user + system time, children it has reaped
included (`bench/proctree.py`). The servers alternate run by run (the order flips every
round), so a busy moment of the machine falls on both; `other load` is the CPU the
rest of the machine used during the run, in cores, so a noisy run shows itself.

Then the whole tree's memory (RSS and PSS) of `courriel serve` fresh, after every
message of the run, and with 100 idle SMTP sessions open.

    python bench/smtp_ingest.py [--messages 5000] [--rounds 3] [--quick]
                                [--checks [--rspamd] | --edge]

`--checks` adds Courriel with its incoming checks on (SPF, DKIM, DMARC, ARC against a
DNS server of the benchmark's own, rspamd off), as a third server of the same run;
`--rspamd` (with `--checks`) a fourth: the same with every message scanned by a
private rspamd (Debian's, its own configuration and loopback ports, as the tests');
`--edge` puts a Postfix made by `courriel edge postfix` in front of Courriel in edge
mode (recipients checked at RCPT, policy service, LMTP) against plain Postfix, and,
as the reference for that shape, the same plain Postfix handing every message by LMTP
to a private Dovecot LMTP server (`Postfix→Dovecot`).

Nothing leaves 127.0.0.1: Postfix's default transport is an error.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proctree import Memory, cpu_seconds, machine_busy_seconds, memory

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "C0mpl3xP@ssW0rD?!"
LISTENERS = (
    "web", "smtp", "submission", "imap", "imaps", "pop3", "pop3s", "policy", "lmtp", "socketmap",
    "relay",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _message_dirs(maildir: Path) -> list[Path]:
    """Where a delivered message lands: the INBOX, or Junk when rspamd says "add
    header" (a delivery all the same)."""
    return [folder / sub for folder in (maildir, maildir / ".Junk") for sub in ("new", "cur")]


def count(maildir: Path) -> int:
    return sum(len(os.listdir(d)) for d in _message_dirs(maildir) if d.is_dir())


def empty(maildir: Path) -> None:
    """Remove the delivered files between runs (off the clock), so that counting
    them stays cheap for the harness."""
    for directory in _message_dirs(maildir):
        if directory.is_dir():
            for name in os.listdir(directory):
                os.unlink(directory / name)


class Courriel:
    def __init__(
        self,
        base: Path,
        name: str = "Courriel",
        env: dict[str, str] | None = None,
        root: Path = ROOT,
    ):
        self.name = name
        self.base = base
        self.root = root  # the checkout it runs from (`--versus`: another one)
        base.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.env = dict(os.environ)
        self.env.update(
            {
                "COURRIEL_DATA": str(base / "data"),
                "COURRIEL_DATABASE_URL": "",
                "COURRIEL_GENERAL_HOSTNAME": "bench.courriel.test",
                "COURRIEL_GREYLIST_ENABLED": "0",
                "COURRIEL_SMTP_MAX_CONNECTIONS_PER_IP": "0",  # one client sends it all
                "COURRIEL_QUEUE_TRANSPORT": "*=127.0.0.1:9",
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(root),
            }
        )
        for listener in LISTENERS:  # every one on, each on a free loopback port
            self.env[f"COURRIEL_{listener.upper()}_BIND"] = "127.0.0.1"
            self.env[f"COURRIEL_{listener.upper()}_PORT"] = str(
                self.port if listener == "smtp" else free_port()
            )
        self.env.pop("COURRIEL_CONFIG", None)
        self.env.update(env or {})
        self.maildir = base / "data" / "mail" / "monsite.be" / "homes" / "monsite0001" / "Maildir"

    def cli(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "courriel", *args],
            env=self.env,
            check=True,
            capture_output=True,
            cwd=self.root,
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
            cwd=self.root,
        )
        deadline = time.monotonic() + 60
        while "Courriel is running" not in (self.base / "serve.log").read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    "courriel serve did not start:\n" + (self.base / "serve.log").read_text()
                )
            time.sleep(0.1)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def memory(self) -> Memory:
        return memory(self.proc.pid)

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
"""


class Postfix:
    name = "Postfix"

    def __init__(self, base: Path, extra: str = "") -> None:
        self.base = base
        self.port = free_port()
        self.maildir = base / "mail" / "monsite.be" / "info" / "Maildir"
        self.extra = extra  # more main.cf lines (DovecotEdge: deliver by LMTP)

    def start(self) -> None:
        for sub in ("etc", "spool", "data", "mail"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.base / "data", "postfix")
        shutil.chown(self.base / "mail", 65534, 65534)
        os.chmod(self.base, 0o755)
        etc = self.base / "etc"
        (etc / "main.cf").write_text(POSTFIX_MAIN.format(base=self.base) + self.extra)
        (etc / "vmailbox").write_text("info@monsite.be monsite.be/info/Maildir/\n")
        master = Path("/etc/postfix/master.cf").read_text().splitlines()
        lines = []
        for line in master:
            if line.startswith("smtp ") and line.split()[1] == "inet":
                line = f"127.0.0.1:{self.port} inet n - n - - smtpd"
            lines.append(line)
        (etc / "master.cf").write_text("\n".join(lines) + "\n")
        subprocess.run(["postfix", "-c", str(etc), "start"], check=True, capture_output=True)
        wait_listening(self.port)
        self.master_pid = master_pid(self.base / "spool")

    def cpu(self) -> float:
        return cpu_seconds(self.master_pid)

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.base / "etc"), "stop"], capture_output=True)


class Checked(Courriel):
    """Courriel with its incoming checks on (SPF, DKIM, DMARC, ARC; rspamd off): the
    client is outside `[smtp] trusted_networks`, and a DNS server of the benchmark's
    own publishes example.org's SPF and DMARC records (nothing asks the system's)."""

    def __init__(self, base: Path, name: str = "Courriel+checks", **env: str) -> None:
        sys.path.insert(0, str(ROOT))
        from tests.fixtures.nsd import PrivateNSD

        self.dns = PrivateNSD(base / "nsd")
        self.dns.zone(
            "example.org",
            [
                self.dns.txt("@", "v=spf1 ip4:127.0.0.0/8 -all"),
                self.dns.txt("_dmarc", "v=DMARC1; p=reject"),
            ],
        )
        self.dns.start()
        super().__init__(
            base,
            name,
            {
                "COURRIEL_SMTP_TRUSTED_NETWORKS": "192.0.2.0/24",
                "COURRIEL_DNS_NAMESERVERS": self.dns.nameserver,
                **env,
            },
        )

    def stop(self) -> None:
        super().stop()
        self.dns.stop()


class Scanned(Checked):
    """The checks and rspamd: every message scanned (`/checkv2`) by a private rspamd."""

    def __init__(self, base: Path) -> None:
        sys.path.insert(0, str(ROOT))
        from tests.fixtures.nsd import PrivateNSD
        from tests.fixtures.rspamd import PrivateRspamd

        self.rspamd_dns = PrivateNSD(base / "rspamd-nsd")
        self.rspamd_dns.zone("rspamd.test", ["@ A 127.0.0.1"])
        self.rspamd_dns.start()
        root = Path(tempfile.mkdtemp(prefix="courriel-bench-rspamd-"))
        self.rspamd = PrivateRspamd(root, self.rspamd_dns.nameserver).start()
        super().__init__(base, "Courriel+checks+rspamd", COURRIEL_FILTER_RSPAMD_URL=self.rspamd.url)

    def stop(self) -> None:
        super().stop()
        self.rspamd.stop()
        self.rspamd_dns.stop()


class Edge:
    """Production mode: a Postfix from `courriel edge postfix` in front of `courriel
    serve` in edge mode (recipients checked at RCPT through the socketmap, the policy
    service asked, mail handed over by LMTP). Its CPU is both process trees'."""

    name = "Postfix→Courriel"

    def __init__(self, base: Path) -> None:
        self.courriel = Courriel(base / "courriel", env={"COURRIEL_GENERAL_MODE": "edge"})
        self.base = base
        self.port = free_port()
        self.maildir = self.courriel.maildir

    def start(self) -> None:
        self.courriel.start()
        etc = self.base / "postfix"
        os.chmod(self.base, 0o755)
        subprocess.run(
            [
                sys.executable, "-m", "courriel", "edge", "postfix", "--config-dir", str(etc),
                "--listen", f"127.0.0.1:{self.port}", "--no-submission",
                "--log-file", str(self.base / "maillog"),
            ],
            env=self.courriel.env, cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        for setting in (
            "default_transport = error:this benchmark instance sends nothing outside",
            "relay_transport = error:this benchmark instance sends nothing outside",
            "smtp_dns_support_level = disabled",
        ):
            subprocess.run(["postconf", "-c", str(etc), "-e", setting], check=True)
        subprocess.run(["postfix", "-c", str(etc), "start"], check=True, capture_output=True)
        wait_listening(self.port)
        self.master_pid = master_pid(self.base / "postfix-spool")

    def cpu(self) -> float:
        return self.front_cpu() + self.courriel.cpu()

    def front_cpu(self) -> float:
        """Postfix's own part of the edge path (its whole process tree)."""
        return cpu_seconds(self.master_pid)

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.base / "postfix"), "stop"], capture_output=True)
        self.courriel.stop()


DOVECOT_LMTP = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
mail_location = maildir:~/Maildir
first_valid_uid = 1
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={base}/home/%u allow_all_users=yes
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
  unix_listener lmtp {{
    mode = 0
  }}
}}
"""


class DovecotEdge:
    """The reference for the edge path: the same Postfix as the plain one, handing
    every message over by LMTP (connections kept open, as in our generated main.cf) to
    a private Dovecot 2.3 LMTP server that writes it into the Maildir, fsync as
    shipped. What Postfix in front of the established LMTP server costs, against
    which Postfix in front of Courriel can be judged. Its CPU is both process trees'."""

    name = "Postfix→Dovecot"

    def __init__(self, base: Path) -> None:
        self.base = base / "dovecot"
        self.lmtp_port = free_port()
        self.postfix = Postfix(
            base / "postfix",
            extra=f"virtual_transport = lmtp:inet:127.0.0.1:{self.lmtp_port}\n"
            "lmtp_connection_cache_destinations = static:all\n"
            "lmtp_destination_concurrency_limit = 10\n",
        )
        self.port = self.postfix.port
        self.maildir = self.base / "home" / "info@monsite.be" / "Maildir"

    def start(self) -> None:
        for sub in ("run", "state", "home"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.base / "home", 65534, 65534)
        os.chmod(self.base, 0o755)
        config = self.base / "dovecot.conf"
        config.write_text(DOVECOT_LMTP.format(base=self.base, port=self.lmtp_port))
        # The daemon must not keep this script's output open.
        subprocess.run(
            ["dovecot", "-c", str(config)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_listening(self.lmtp_port)
        found = subprocess.run(
            ["pgrep", "-o", "-f", f"dovecot -c {config}"], capture_output=True, text=True
        )
        self.dovecot_pid = int(found.stdout.split()[0])
        self.postfix.start()

    def cpu(self) -> float:
        return self.front_cpu() + cpu_seconds(self.dovecot_pid)

    def front_cpu(self) -> float:
        return self.postfix.cpu()

    def stop(self) -> None:
        self.postfix.stop()
        subprocess.run(
            ["doveadm", "-c", str(self.base / "dovecot.conf"), "stop"], capture_output=True
        )


def master_pid(spool: Path) -> int:
    path = spool / "pid" / "master.pid"
    deadline = time.monotonic() + 30
    while not path.exists() or not path.read_text().strip():
        if time.monotonic() > deadline:
            raise SystemExit(f"Postfix wrote no {path}")
        time.sleep(0.1)
    return int(path.read_text().split()[0])


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing listens on port {port}") from None
            time.sleep(0.2)


Server = Courriel | Postfix | Edge | DovecotEdge


def run(server: Server, messages: int, size: int, sessions: int) -> dict:
    """One run: every message sent over a connection of its own, then the clock stops
    once all are files in the Maildir."""
    empty(server.maildir)
    # What the previous run left for the kernel to write out (up to 500 MB of
    # Maildir files) must not be written during this one, on the next server's time.
    os.sync()
    time.sleep(0.5)
    front = getattr(server, "front_cpu", None)  # the edge's Postfix, apart
    front_before = front() if front else 0.0
    cpu_before, busy_before = server.cpu(), machine_busy_seconds()
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    sent = subprocess.run(
        [
            "smtp-source",
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
        capture_output=True,
        text=True,
    )
    if sent.returncode:  # an SMTP error: say which server answered what
        raise SystemExit(
            f"{server.name}: smtp-source exited {sent.returncode}: "
            f"{(sent.stderr or sent.stdout).strip()[-2000:]}"
        )
    deadline = time.monotonic() + 600
    while count(server.maildir) < messages:
        if time.monotonic() > deadline:
            raise SystemExit(f"{server.name}: only {count(server.maildir)} delivered")
        time.sleep(0.005)
    elapsed = time.monotonic() - start
    cpu = server.cpu() - cpu_before
    front_cpu = front() - front_before if front else 0.0
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (client_after.ru_utime + client_after.ru_stime) - (
        client_before.ru_utime + client_before.ru_stime
    )
    other = machine_busy_seconds() - busy_before - cpu - client
    return {
        "rate": messages / elapsed,
        "cpu_ms": cpu * 1000 / messages,
        "front_ms": front_cpu * 1000 / messages,
        "other_cores": max(0.0, other) / elapsed,
    }


def hold_sessions(server: Courriel, sessions: int = 100) -> Memory:
    """The tree's memory with `sessions` clients stopped in the middle of DATA."""
    socks = []
    try:
        for _ in range(sessions):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
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
        return server.memory()
    finally:
        for sock, _ in socks:
            sock.close()


def settled_memory(server: Courriel) -> Memory:
    """The tree's memory once start-up is over: "Courriel is running" is printed while
    the SMTP worker processes may still be importing, so wait until a second passes
    without the resident total moving by more than 0.2 MiB (at most 20 s)."""
    previous = server.memory()
    for _ in range(20):
        time.sleep(1)
        current = server.memory()
        if abs(current.rss_mib - previous.rss_mib) < 0.2:
            return current
        previous = current
    return previous


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each server per row")
    parser.add_argument("--quick", action="store_true", help="a tenth of the messages, 1 round")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--checks", action="store_true", help="also Courriel with its incoming checks on"
    )
    mode.add_argument(
        "--edge", action="store_true", help="Postfix in front of Courriel (production mode)"
    )
    mode.add_argument(
        "--versus",
        type=Path,
        metavar="CHECKOUT",
        help="also Courriel from another checkout (git worktree add /tmp/other COMMIT)",
    )
    parser.add_argument(
        "--rspamd", action="store_true", help="with --checks: also with rspamd scanning"
    )
    args = parser.parse_args()
    if args.rspamd and not args.checks:
        parser.error("--rspamd goes with --checks")
    if args.quick:
        args.messages, args.rounds = args.messages // 10, 1
    needed = ("smtp-source", "postfix") + (("nsd",) if args.checks else ())
    for tool in needed + (("rspamd",) if args.rspamd else ()):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: run scripts/setup")
    base = Path(tempfile.mkdtemp(prefix="courriel-bench-smtp-"))
    os.chmod(base, 0o755)
    postfix = Postfix(base / "postfix")
    if args.edge:
        ours: list[Server] = [Edge(base / "edge"), DovecotEdge(base / "dovecot-edge")]
    else:
        ours = [Courriel(base / "courriel")]
        if args.checks:
            ours.append(Checked(base / "checked"))
        if args.rspamd:
            ours.append(Scanned(base / "scanned"))
        if args.versus:
            other = args.versus.resolve()
            if not (other / "courriel" / "__init__.py").is_file():
                parser.error(f"--versus: no courriel package in {other}")
            ours.append(Courriel(base / "versus", name=f"Courriel@{other.name}", root=other))
    servers: list[Server] = [postfix, *ours]
    rows = [
        (size, label, sessions)
        for size, label in ((1024, "1 KiB"), (102400, "100 KiB"))
        for sessions in (1, 8)
    ]
    results: dict[tuple[str, int], dict[str, list[dict]]] = {
        (label, sessions): {server.name: [] for server in servers} for _, label, sessions in rows
    }
    started: list[Server] = []
    try:
        for server in servers:
            server.start()
            started.append(server)
        watched = ours[0].courriel if isinstance(ours[0], Edge) else ours[0]
        fresh = settled_memory(watched)
        for round_number in range(args.rounds):
            for size, label, sessions in rows:
                order = servers if round_number % 2 == 0 else servers[::-1]
                for server in order:
                    outcome = run(server, args.messages, size, sessions)
                    results[(label, sessions)][server.name].append(outcome)
                    print(
                        f"round {round_number + 1} {label:>7} x {sessions}: {server.name:16} "
                        f"{outcome['rate']:6.0f} msg/s, {outcome['cpu_ms']:.2f} ms CPU/msg, "
                        f"other load {outcome['other_cores']:.2f} cores",
                        flush=True,
                    )
        delivered = args.messages * len(rows) * args.rounds
        after = watched.memory()
        held = hold_sessions(watched) if not args.edge else None
    finally:
        for server in reversed(started):
            server.stop()
    report(args, rows, results, servers)
    print(f"Whole process tree of courriel serve ({watched.name}, every listener on):")
    for what, figures in (
        ("fresh", fresh),
        (f"after {delivered:,} messages", after),
        ("with 100 idle SMTP sessions", held),
    ):
        if figures is not None:
            print(
                f"  {what}: RSS {figures.rss_mib:.1f} MiB, PSS {figures.pss_mib:.1f} MiB "
                f"({figures.processes} processes)"
            )
    shutil.rmtree(base, ignore_errors=True)


def report(
    args: argparse.Namespace,
    rows: list[tuple[int, str, int]],
    results: dict[tuple[str, int], dict[str, list[dict]]],
    servers: list[Server],
) -> None:
    """The table: each server's median msg/s and CPU per message, its ratio to
    Postfix's msg/s, and (with --checks) the checks' cost against the same code."""
    print()
    print(
        f"{args.rounds} round(s) of {args.messages} messages per row, servers alternating; "
        "medians of the rounds, a new connection per message:"
    )
    print()
    names = [server.name for server in servers]
    header = ["body", "sessions"] + [f"{n} msg/s" for n in names]
    header += [f"{n} / Postfix" for n in names[1:]]
    if args.checks:
        header.append("checks on / off")
    if args.rspamd:
        header.append("rspamd on / off")
    header += ["server CPU ms/msg " + " / ".join(names)]
    fronted = names[1:] if args.edge else []
    if fronted:
        # What the edge's Postfix alone costs, and the ratio the edge would reach on a
        # CPU-bound row if what stands behind it cost nothing.
        header += ["of which Postfix's own part " + " / ".join(fronted), "ceiling / Postfix"]
    header.append("other load (cores)")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for _, label, sessions in rows:
        runs = results[(label, sessions)]
        rates = {n: median(runs[n], "rate") for n in names}
        cells = [label, str(sessions)] + [f"{rates[n]:.0f}" for n in names]
        cells += [f"{rates[n] / rates['Postfix']:.2f}" for n in names[1:]]
        if args.checks:
            cells.append(f"{rates['Courriel+checks'] / rates['Courriel']:.2f}")
        if args.rspamd:
            cells.append(f"{rates['Courriel+checks+rspamd'] / rates['Courriel']:.2f}")
        cells.append(" / ".join(f"{median(runs[n], 'cpu_ms'):.2f}" for n in names))
        if fronted:
            cells.append(" / ".join(f"{median(runs[n], 'front_ms'):.2f}" for n in fronted))
            ceiling = median(runs["Postfix"], "cpu_ms") / median(runs[fronted[0]], "front_ms")
            cells.append(f"{ceiling:.2f}")
        load = max(run["other_cores"] for n in names for run in runs[n])
        cells.append(f"≤ {load:.2f}")
        print("| " + " | ".join(cells) + " |")
    print()


if __name__ == "__main__":
    main()
