#!/usr/bin/env python3
"""Greylisting policy service: Courriel against postgrey 1.37, same request stream.

Drives both with persistent connections (one client process per connection, as
Postfix's smtpd processes do), a mix of new and repeated triplets, and prints
decisions per second, p50/p99 latency and the ratio to postgrey; then runs Courriel
again with 1,000,000 other triplets in its store, to show that a big store does not
slow it down.

    python bench/greylist.py                       # 5 rounds of 10,000 requests, 4 connections
    python bench/greylist.py --connections 16 --requests 40000
    COURRIEL_DATABASE_URL=postgresql://... python bench/greylist.py   # on PostgreSQL

Targets (issue 4): at least 3x postgrey's decisions per second, a p99 latency no
higher than postgrey's, and no slow-down with 1,000,000 triplets in the store.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pgdatabases import create_database, drop_databases

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


# -- the request stream ------------------------------------------------------------------------
def request(ip: str, sender: str, recipient: str, instance: str) -> bytes:
    """What Postfix 3.7 sends at RCPT time."""
    return (
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
        f"client_address={ip}\nclient_name=unknown\nclient_port=40000\n"
        "reverse_client_name=unknown\nserver_address=127.0.0.1\nserver_port=25\n"
        f"helo_name=mail.example.net\nsender={sender}\nrecipient={recipient}\n"
        f"recipient_count=0\nqueue_id=\ninstance={instance}\nsize=0\netrn_domain=\n"
        "stress=\nsasl_method=\nsasl_username=\nsasl_sender=\nccert_subject=\n"
        "ccert_issuer=\nccert_fingerprint=\nencryption_protocol=\nencryption_cipher=\n"
        "encryption_keysize=0\npolicy_context=\ncompatibility_level=3.6\n"
        "mail_version=3.7.11\n\n"
    ).encode()


def triplet(rng: random.Random) -> tuple[str, str, str]:
    ip = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    sender = f"user{rng.randint(0, 10**9)}@sender{rng.randint(0, 10**6)}.example"
    recipient = f"box{rng.randint(0, 999)}@customer{rng.randint(0, 199)}.example"
    return ip, sender, recipient


@dataclass
class Stream:
    """`known` triplets are sent once before the delay starts (so that in the measured
    run they pass); the measured `requests` mix new triplets (deferred), retries of
    those within the run (deferred again, the run being shorter than the delay) and
    known ones (passed with a header the first time, then trusted). Every decision is
    thus the same for both servers, whatever their speed."""

    known: list[bytes]
    requests: list[bytes]


def make_stream(count: int, new_share: float, known: int, seed: int) -> Stream:
    rng = random.Random(seed)
    old = [triplet(rng) for _ in range(known)]
    fresh: list[tuple[str, str, str]] = []
    requests = []
    for n in range(count):
        if not fresh or rng.random() < new_share:
            fresh.append(triplet(rng))
            chosen = fresh[-1]
        elif rng.random() < 0.5:
            chosen = fresh[rng.randrange(len(fresh))]
        else:
            chosen = old[rng.randrange(len(old))]
        requests.append(request(*chosen, instance=f"{seed}.{n}"))
    return Stream([request(*t, instance=f"known.{i}") for i, t in enumerate(old)], requests)


# -- the clients -------------------------------------------------------------------------------
def client(
    index: int,
    port: int,
    requests: list[bytes],
    start: multiprocessing.synchronize.Barrier,
    out: object,
) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies = []
    actions = []
    start.wait()
    for data in requests:
        began = time.perf_counter()
        sock.sendall(data)
        answer = b""
        while not answer.endswith(b"\n\n"):
            chunk = sock.recv(4096)
            if not chunk:
                raise SystemExit("the server closed the connection")
            answer += chunk
        latencies.append(time.perf_counter() - began)
        actions.append(answer[7:9])  # b"DE"(FER), b"PR"(EPEND), b"DU"(NNO)
    sock.close()
    out.put((index, latencies, actions))  # type: ignore[attr-defined]


@dataclass
class Result:
    name: str
    store: str
    connections: int
    rate: float
    p50_ms: float
    p99_ms: float
    actions: list[bytes]


def drive(name: str, store: str, port: int, requests: list[bytes], connections: int) -> Result:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(connections + 1)
    queue = context.Queue()
    shares = [requests[i::connections] for i in range(connections)]
    workers = [
        context.Process(target=client, args=(i, port, share, barrier, queue))
        for i, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    barrier.wait()
    began = time.perf_counter()
    results = [queue.get() for _ in workers]
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join()
    latencies = sorted(lat for _, lats, _ in results for lat in lats)
    # Put the answers back in stream order to compare the two servers' decisions.
    actions: list[bytes] = [b""] * len(requests)
    for index, _, answers in results:
        actions[index::connections] = answers
    return Result(
        name,
        store,
        connections,
        len(requests) / elapsed,
        statistics.median(latencies) * 1000,
        latencies[int(len(latencies) * 0.99) - 1] * 1000,
        actions,
    )


def send_all(port: int, requests: list[bytes]) -> None:
    """Unmeasured requests on one connection (first sightings, warm-up)."""
    sock = socket.create_connection(("127.0.0.1", port))
    for data in requests:
        sock.sendall(data)
        answer = b""
        while not answer.endswith(b"\n\n"):
            answer += sock.recv(4096)
    sock.close()


# -- the servers -------------------------------------------------------------------------------
def start_postgrey(work: Path, delay: int) -> tuple[subprocess.Popen[bytes], int]:
    dbdir = work / "postgrey"
    dbdir.mkdir()
    shutil.chown(dbdir, "postgrey", "postgrey")
    port = free_port()
    proc = subprocess.Popen(
        [
            "postgrey",
            f"--inet=127.0.0.1:{port}",
            f"--dbdir={dbdir}",
            f"--delay={delay}",
            "--user=postgrey",
            "--group=postgrey",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port, proc)
    return proc, port


DATABASES: dict[Path, str] = {}  # data directory -> its own PostgreSQL database URL


def fresh_database(data: Path) -> None:
    """On PostgreSQL, each Courriel run gets a new empty database (dropped at the end)."""
    admin = os.environ.get("COURRIEL_DATABASE_URL", "")
    if admin:
        DATABASES[data] = create_database(admin, f"courriel_bench_{os.getpid()}_{len(DATABASES)}")


def drop_all_databases() -> None:
    if DATABASES:
        drop_databases(os.environ["COURRIEL_DATABASE_URL"], list(DATABASES.values()))


def courriel_env(data: Path, delay: int, port: int) -> dict[str, str]:
    if data not in DATABASES:
        fresh_database(data)
    env = dict(os.environ)
    if data in DATABASES:
        env["COURRIEL_DATABASE_URL"] = DATABASES[data]
    env.update(
        {
            "COURRIEL_DATA": str(data),
            # only the policy service: no other listener, no scheduled backup
            **{
                f"COURRIEL_{section}_ENABLED": "false"
                for section in ("WEB", "SMTP", "SUBMISSION", "IMAP", "IMAPS", "POP3", "POP3S")
            },
            "COURRIEL_BACKUP_ENABLED": "false",
            "COURRIEL_POLICY_BIND": "127.0.0.1",
            "COURRIEL_POLICY_PORT": str(port),
            "COURRIEL_GREYLIST_DELAY": f"{delay}s",
            "COURRIEL_GENERAL_HOSTNAME": "bench.example",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def start_courriel(data: Path, delay: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = open(data.parent / f"{data.name}.log", "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "courriel", "serve"],
        cwd=ROOT,
        env=courriel_env(data, delay, port),
        stdout=log,
        stderr=log,
    )
    wait_port(port, proc)
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def fill(count: int, seed: int) -> None:
    """Write `count` random triplets (none of them in the stream) into the store named
    by this process's environment: 70 % trusted, seen over the last 30 days."""
    from courriel.bootstrap import initialize

    initialize()
    from courriel.greylist.normalise import (
        client_network,
        normalise_recipient,
        normalise_sender,
        triplet_key,
    )
    from courriel.greylist.store import Store

    rng = random.Random(seed)
    now = time.time()
    store = Store()
    batch = []
    for n in range(count):
        ip, _, recipient = triplet(rng)
        network = client_network(ip)
        sender = normalise_sender(f"old{n}@preload{rng.randint(0, 10**6)}.example")
        recipient = normalise_recipient(recipient)
        first = now - rng.uniform(0, 30 * 86400)
        passed = first + 900 if rng.random() < 0.7 else None
        key = triplet_key(network, sender, recipient)
        batch.append(
            (
                key,
                network,
                sender,
                recipient,
                ip,
                first,
                passed or first,
                passed,
                1,
                int(bool(passed)),
            )
        )
        if len(batch) == 50_000:
            store.insert_many(batch)
            batch.clear()
            print(f"  {n + 1:,} triplets", file=sys.stderr, flush=True)
    if batch:
        store.insert_many(batch)


def preload(data: Path, count: int) -> float:
    began = time.monotonic()
    subprocess.run(
        [sys.executable, __file__, "--fill", str(count)],
        cwd=ROOT,
        env=courriel_env(data, 1, 0),
        check=True,
    )
    return time.monotonic() - began


# -- the report --------------------------------------------------------------------------------
def agreement(a: list[bytes], b: list[bytes]) -> float:
    def defer(x: bytes) -> bool:
        return x == b"DE"

    same = sum(defer(x) == defer(y) for x, y in zip(a, b, strict=True))
    return 100.0 * same / len(a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10000, help="per round")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--new", type=float, default=0.3, help="share of new triplets")
    parser.add_argument("--known", type=int, default=3000, help="triplets seen beforehand")
    parser.add_argument(
        "--delay", type=int, default=150, help="greylisting delay (s), longer than one run"
    )
    parser.add_argument("--preload", type=int, default=1_000_000, help="0 to skip")
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs per server")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--fill", type=int, help=argparse.SUPPRESS)  # internal: preload
    args = parser.parse_args()
    if args.fill:
        sys.path.insert(0, str(ROOT))  # this checkout's courriel, not an installed one
        fill(args.fill, seed=7)
        return

    database = os.environ.get("COURRIEL_DATABASE_URL", "")
    store = "PostgreSQL" if database else "SQLite"
    plans = [
        make_stream(args.requests, args.new, args.known, args.seed + r) for r in range(args.rounds)
    ]
    warm = make_stream(300, 1.0, 1, 0).requests
    work = Path(tempfile.mkdtemp(prefix="courriel-bench-"))
    work.chmod(0o755)
    print(
        f"{args.requests:,} requests x {args.rounds} rounds, {args.connections} connections, "
        f"{args.new:.0%} new triplets, delay {args.delay}s; work in {work}",
        file=sys.stderr,
    )
    servers: list[tuple[str, str, subprocess.Popen[bytes], int]] = []
    runs: dict[int, list[Result]] = {}
    try:
        if args.preload:
            print(f"loading {args.preload:,} triplets...", file=sys.stderr)
            seconds = preload(work / "courriel-big", args.preload)
            print(f"loaded in {seconds:.0f} s", file=sys.stderr)
        servers.append(("postgrey 1.37", "BerkeleyDB", *start_postgrey(work, args.delay)))
        servers.append(
            ("Courriel", f"{store}, empty", *start_courriel(work / "courriel", args.delay))
        )
        if args.preload:
            big = start_courriel(work / "courriel-big", args.delay)
            servers.append(("Courriel", f"{store}, {args.preload:,} triplets", *big))
        for _, _, _, port in servers:
            send_all(port, warm + [data for plan in plans for data in plan.known])
        print(f"waiting {args.delay + 1} s for the known triplets' delay...", file=sys.stderr)
        time.sleep(args.delay + 1)
        # Rounds alternate between the servers, so that a busy moment on the machine
        # (other work on the same cores) does not land on one server only.
        for number, plan in enumerate(plans, 1):
            order = list(enumerate(servers))
            if number % 2 == 0:  # the two Courriel runs swap places every other round
                order = [order[0], *reversed(order[1:])]
            for index, (name, label, _, port) in order:
                began = time.monotonic()
                result = drive(name, label, port, plan.requests, args.connections)
                runs.setdefault(index, []).append(result)
                print(
                    f"round {number}: {name} ({label}): {result.rate:,.0f}/s, "
                    f"p99 {result.p99_ms:.2f} ms",
                    file=sys.stderr,
                )
                if time.monotonic() - began >= args.delay:
                    print(f"warning: {name} took longer than --delay", file=sys.stderr)
    finally:
        for _, _, proc, _ in servers:
            stop(proc)
        if not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)
        drop_all_databases()
    report(args, [runs[i] for i in sorted(runs)])


def median_result(rounds: list[Result]) -> Result:
    """The median round by rate (p50 and p99 are medians over the rounds too)."""
    ordered = sorted(rounds, key=lambda r: r.rate)
    middle = ordered[len(ordered) // 2]
    return Result(
        middle.name,
        middle.store,
        middle.connections,
        middle.rate,
        statistics.median(r.p50_ms for r in rounds),
        statistics.median(r.p99_ms for r in rounds),
        middle.actions,
    )


def report(args: argparse.Namespace, runs: list[list[Result]]) -> None:
    results = [median_result(rounds) for rounds in runs]
    peer = results[0]
    print()
    print(f"Median of {args.rounds} rounds of {args.requests:,} requests, {args.new:.0%} new.")
    print()
    print("| server | store | connections | decisions/s | p50 ms | p99 ms | vs postgrey |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.name} | {r.store} | {r.connections} | {r.rate:,.0f} | {r.p50_ms:.2f} "
            f"| {r.p99_ms:.2f} | {r.rate / peer.rate:.1f}x |"
        )
    ours = results[1]
    print()
    same = min(agreement(a.actions, b.actions) for a, b in zip(runs[0], runs[1], strict=True))
    print(f"decisions identical to postgrey's (defer or not): {same:.2f} %")
    ratio = ours.rate / peer.rate
    checks = [
        (f"throughput >= 3x postgrey's ({ratio:.1f}x)", ratio >= 3),
        (
            f"p99 <= postgrey's ({ours.p99_ms:.2f} vs {peer.p99_ms:.2f} ms)",
            ours.p99_ms <= peer.p99_ms,
        ),
    ]
    if len(results) > 2:
        big = results[2]
        kept = big.rate / ours.rate
        per_round = ", ".join(
            f"{b.rate / e.rate:.2f}" for b, e in zip(runs[2], runs[1], strict=True)
        )
        checks.append(
            (
                f"no slow-down with {args.preload:,} triplets (median rate {kept:.2f} of the "
                f"empty store's; per round {per_round}; p99 {big.p99_ms:.2f} ms)",
                kept >= 0.9 and big.p99_ms <= peer.p99_ms,
            )
        )
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}: {text}")


if __name__ == "__main__":
    main()
