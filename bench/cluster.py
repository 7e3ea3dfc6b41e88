#!/usr/bin/env python3
"""Several hosting servers (issue 15): what handing mail to another server costs, and
how fast a domain moves.

Two real `courriel serve` on 127.0.0.11 (maximusconfessor) and 127.0.0.13 (moses),
one PostgreSQL (COURRIEL_DATABASE_URL, else the one `scripts/postgres-for-tests`
runs), monsite.be on maximusconfessor and autre.be on moses.

1. Per-message time: N messages of 2 KiB sent over SMTP to maximusconfessor by
   `--sessions` concurrent senders (a connection per message), for monsite.be (stored
   there: direct) and for autre.be (handed to moses over LMTP/TLS before the 250),
   alternating round by round. A run's clock stops when the last message is in the
   mailbox's Maildir on the server holding it. The issue's bound: via another
   server at most 1.5 times direct. Each server's CPU time per message (from /proc)
   is printed beside, less sensitive than the clock to other work on the machine.
2. Move: `--move` messages of 4 KiB in monsite.be's Maildir on maximusconfessor,
   copied with `rsync -a` between the two data directories (the yardstick), then
   `courriel domain move monsite.be --to moses` (from the request to "done": the
   copy, the switch, the catch-up and the grace period for late mail, reported
   apart); messages/s and MB/s.

    python bench/cluster.py [--messages 500] [--rounds 3] [--sessions 4] [--move 20000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.cluster import Cluster, running_cluster  # noqa: E402
from tests.fixtures.platform import STRONG, message  # noqa: E402

os.environ.setdefault("COURRIEL_GENERAL_USER", "")  # as the tests: no drop to another user
NODES = (("maximusconfessor", "127.0.0.11"), ("moses", "127.0.0.13"))
HOME = {"monsite.be": ("monsite0001", "maximusconfessor"), "autre.be": ("autre0001", "moses")}


def count(cluster: Cluster, domain: str, node: str = "") -> int:
    login, home = HOME[domain]
    node = node or home
    base = cluster[node].maildir(login, domain)
    return sum(len(os.listdir(base / sub)) for sub in ("new", "cur") if (base / sub).is_dir())


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of `pid` and its descendants, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return total


def node_cpu(cluster: Cluster) -> dict[str, float]:
    return {
        name: cpu_seconds(cluster[name].served.proc.pid)  # type: ignore[union-attr]
        for name, _address in NODES
    }


def per_message(seconds: dict[str, float], n: int) -> str:
    return ", ".join(f"{name} {value / n * 1000:.2f}" for name, value in seconds.items())


def send_batch(cluster: Cluster, domain: str, n: int, sessions: int, label: str) -> float:
    """Seconds from the first connection until all `n` are in the home Maildir."""
    node = cluster["maximusconfessor"]
    recipient = f"info@{domain}"
    body = message("bench@example.org", [recipient], ("x" * 70 + "\r\n") * 25, subject=label)
    before = count(cluster, domain)

    def one(_: int) -> None:
        with smtplib.SMTP(node.address, node.port("smtp"), timeout=60) as client:
            client.sendmail("bench@example.org", [recipient], body)

    started = time.monotonic()
    with ThreadPoolExecutor(sessions) as pool:
        list(pool.map(one, range(n)))
    deadline = started + 600
    while count(cluster, domain) < before + n:
        if time.monotonic() > deadline:
            raise SystemExit(f"{domain}: not all {n} messages arrived")
        time.sleep(0.01)
    return time.monotonic() - started


def seed(cluster: Cluster, n: int, size: int = 4096) -> int:
    cur = cluster["maximusconfessor"].maildir("monsite0001", "monsite.be") / "cur"
    now = int(time.time())
    total = 0
    for i in range(n):
        head = f"From: a@example.org\r\nTo: info@monsite.be\r\nSubject: old-{i}\r\n\r\n".encode()
        data = head + b"y" * (size - len(head) - 2) + b"\r\n"
        (cur / f"{now - n + i}.M{i}P1.maximusconfessor,S={len(data)}:2,S").write_bytes(data)
        total += len(data)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--move", type=int, default=20000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="courriel-bench-cluster-"))
    base.chmod(0o755)  # the servers drop to the courriel user
    try:
        with running_cluster(base, NODES, {"COURRIEL_BACKUP_ENABLED": "false"}) as cluster:
            cli = cluster.cli
            for domain, (_login, server) in HOME.items():
                cli("domain", "create", domain, "--plan", "recommended", "--server", server)
                cli("user", "create", domain, "--pass", STRONG, "--extra", "info")
            send_batch(cluster, "monsite.be", 20, args.sessions, "warm-up")
            send_batch(cluster, "autre.be", 20, args.sessions, "warm-up")
            times: dict[str, list[float]] = {"monsite.be": [], "autre.be": []}
            cpu: dict[str, list[dict[str, float]]] = {"monsite.be": [], "autre.be": []}
            for round_ in range(args.rounds):
                order = ["monsite.be", "autre.be"][:: 1 if round_ % 2 == 0 else -1]
                for domain in order:
                    before = node_cpu(cluster)
                    seconds = send_batch(
                        cluster, domain, args.messages, args.sessions, f"round-{round_}"
                    )
                    after = node_cpu(cluster)
                    used = {name: after[name] - before[name] for name in after}
                    times[domain].append(seconds)
                    cpu[domain].append(used)
                    spent = per_message(used, args.messages)
                    print(
                        f"round {round_}: {domain:11} {seconds:6.2f} s "
                        f"(CPU ms per message: {spent})",
                        flush=True,
                    )
            direct = statistics.median(times["monsite.be"]) / args.messages * 1000
            handed = statistics.median(times["autre.be"]) / args.messages * 1000
            print(
                f"\nper message (median of {args.rounds}, {args.sessions} sessions): "
                f"direct {direct:.2f} ms, via another server {handed:.2f} ms, "
                f"ratio {handed / direct:.2f} (bound: 1.50)"
            )
            for domain, label in (("monsite.be", "direct"), ("autre.be", "via another server")):
                rounds = cpu[domain]
                median = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
                spent = per_message(median, args.messages)
                print(f"CPU ms per message, {label}: {spent}")

            if args.move:
                size = seed(cluster, args.move)
                source = cluster["maximusconfessor"].data / "mail" / "monsite.be"
                copy = base / "rsync-copy"
                copy.mkdir()
                started = time.monotonic()
                subprocess.run(["rsync", "-a", f"{source}/", f"{copy}/monsite.be/"], check=True)
                rsync = time.monotonic() - started
                shutil.rmtree(copy)
                started = time.monotonic()
                cli("domain", "move", "monsite.be", "--to", "moses", timeout=3600)
                moved = time.monotonic() - started
                row = cli("domain", "moves", "--json").json[0]
                to_switch = (
                    datetime.fromisoformat(row["switched_at"])
                    - datetime.fromisoformat(row["created_at"])
                ).total_seconds()
                files = count(cluster, "monsite.be", "moses")
                mb = size / 1e6
                print(
                    f"\nmove of {files} messages ({mb:.0f} MB): switched after {to_switch:.1f} s"
                    f" = {files / to_switch:.0f} messages/s, {mb / to_switch:.1f} MB/s "
                    f"(done after {moved:.1f} s, with the wait for late mail); "
                    f"rsync -a of the same Maildirs {rsync:.1f} s "
                    f"({files / rsync:.0f} messages/s, {mb / rsync:.1f} MB/s)"
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
