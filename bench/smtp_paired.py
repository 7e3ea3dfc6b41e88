"""Two versions of Courriel side by side, for a change too small for the noise of
`smtp_ingest.py`: both servers run at once (every listener on, as there), batches of
messages alternate between them (A then B, then B then A...), and each pair gives a
ratio B/A; the median ratio and how many pairs B won are what to read, with the user
and system CPU per message of each server's whole process tree.

    python bench/smtp_paired.py OLD_CHECKOUT NEW_CHECKOUT --pairs 6 --messages 3000

Each checkout is a directory holding a `courriel` package (`git worktree add /tmp/old
HEAD~1`). Run as root, like `smtp_ingest.py`, with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

import smtp_ingest
from proctree import cpu_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="checkout A (before)")
    parser.add_argument("b", type=Path, help="checkout B (after)")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--messages", type=int, default=3000, help="per batch")
    parser.add_argument("--size", type=int, default=1024, help="body bytes")
    parser.add_argument("--sessions", type=int, default=1)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="courriel-bench-paired-"))
    os.chmod(base, 0o755)  # the servers' service user works below it
    servers: dict[str, smtp_ingest.Courriel] = {}
    results: dict[str, list[tuple[float, float, float]]] = {"A": [], "B": []}
    try:
        for name, checkout in (("A", args.a), ("B", args.b)):
            server = smtp_ingest.Courriel(base / name, name=name, root=checkout.resolve())
            server.start()
            servers[name] = server
            smtp_ingest.run(server, 300, args.size, args.sessions)  # warm up
        for pair in range(args.pairs):
            for name in ("A", "B") if pair % 2 == 0 else ("B", "A"):
                server = servers[name]
                user, system = cpu_split(server.proc.pid)
                rate = smtp_ingest.run(server, args.messages, args.size, args.sessions)["rate"]
                user_after, system_after = cpu_split(server.proc.pid)
                results[name].append(
                    (
                        rate,
                        (user_after - user) * 1000 / args.messages,
                        (system_after - system) * 1000 / args.messages,
                    )
                )
            a, b = results["A"][-1], results["B"][-1]
            print(
                f"pair {pair + 1}: A {a[0]:.0f} msg/s, B {b[0]:.0f} msg/s, B/A {b[0] / a[0]:.3f}",
                flush=True,
            )
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    ratios = [b[0] / a[0] for a, b in zip(results["A"], results["B"], strict=True)]
    won = sum(ratio > 1 for ratio in ratios)
    print(f"\nB/A median {statistics.median(ratios):.3f} (B ahead in {won} of {len(ratios)} pairs)")
    for name in ("A", "B"):
        rate, user, system = (statistics.median(r[k] for r in results[name]) for k in range(3))
        print(f"{name}: {rate:.0f} msg/s, CPU ms/msg user {user:.3f} + system {system:.3f}")


if __name__ == "__main__":
    main()
