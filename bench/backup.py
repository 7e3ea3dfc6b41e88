"""Benchmark of `courriel backup run` against rsnapshot (issue 7).

Builds a Maildir tree of 100,000 messages across 200 mailboxes (sizes drawn from a
log-normal distribution: median about 6 kB, a long tail up to 5 MB, as real mail),
then, for Courriel and for Debian's rsnapshot configured the same way (same source,
`retain daily 7`, `retain weekly 4`, its default settings otherwise):

1. times a first snapshot;
2. changes 1 % of the messages as a day of mail does (40 % new messages arrive,
   40 % get flags - a rename, e.g. `new/X` -> `cur/X:2,S` - and 20 % are deleted);
3. times a second snapshot and measures its extra disk use with `du`, which counts
   hard-linked files once, split into new file data and directory blocks.

Targets: time ratio (Courriel / rsnapshot) <= 1.0 on both runs; extra disk use of the
second snapshot within 10 % of the changed bytes (the new messages).

    python bench/backup.py [--messages 100000] [--mailboxes 200] [--dir /tmp/courriel-bench-backup]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

FOLDERS = ("", ".Sent", ".Drafts", ".Trash", ".Junk")


def build(mail: Path, messages: int, mailboxes: int, rng: random.Random) -> list[Path]:
    pool = os.urandom(8 << 20)
    per, extra = divmod(messages, mailboxes)
    created: list[Path] = []
    for box in range(mailboxes):
        maildir = (
            mail
            / f"client{box % 20:02d}.be"
            / "homes"
            / f"client{box % 20:02d}{box:04d}"
            / "Maildir"
        )
        for folder in FOLDERS:
            for sub in ("cur", "new", "tmp"):
                (maildir / folder / sub).mkdir(parents=True, exist_ok=True)
            if folder:
                (maildir / folder / "maildirfolder").touch()
        for i in range(per + (1 if box < extra else 0)):
            created.append(_message(maildir, rng, pool, f"{box}.{i}"))
    return created


def _message(maildir: Path, rng: random.Random, pool: bytes, unique: str) -> Path:
    size = min(int(rng.lognormvariate(8.7, 1.2)), 5 << 20)
    start = rng.randrange(0, len(pool) - size)
    stamp = 1_700_000_000 + rng.randrange(0, 30_000_000)
    name = f"{stamp}.M{rng.randrange(10**6)}P{unique}.bench,S={size},W={size}"
    where = rng.random()
    if where < 0.05:
        path = maildir / "new" / name
    elif where < 0.85:
        path = maildir / "cur" / f"{name}:2,S"
    elif where < 0.95:
        path = maildir / ".Sent" / "cur" / f"{name}:2,S"
    else:
        path = maildir / ".Trash" / "cur" / f"{name}:2,ST"
    path.write_bytes(pool[start : start + size])
    os.utime(path, (stamp, stamp))
    return path


def change(messages: list[Path], fraction: float, rng: random.Random) -> tuple[int, int]:
    """Change `fraction` of the messages; returns the bytes of new content, and the
    disk space they take in the live Maildir (whole blocks, as any copy takes)."""
    pool = os.urandom(8 << 20)
    chosen = rng.sample(range(len(messages)), int(len(messages) * fraction))
    new_bytes = new_blocks = 0
    for n, index in enumerate(chosen):
        path = messages[index]
        kind = n % 5
        if kind in (0, 1):  # a new message arrives in the same mailbox
            folder = path.parent.parent
            maildir = folder.parent if folder.name.startswith(".") else folder
            arrived = _message(maildir, rng, pool, f"new{n}")
            stat = arrived.stat()
            new_bytes += stat.st_size
            new_blocks += stat.st_blocks * 512
        elif kind in (2, 3):  # flags change: a rename
            base = path.name.partition(":2,")[0]
            target = path.parent.parent / "cur" / f"{base}:2,RS"
            path.rename(target)
            messages[index] = target
        else:  # deleted
            path.unlink()
    return new_bytes, new_blocks


def du(*paths: Path) -> list[int]:
    """Bytes used by each path, hard links counted once across all (like `du`)."""
    out = subprocess.run(
        ["du", "-s", "--block-size=1", *map(str, paths)], capture_output=True, text=True, check=True
    ).stdout
    return [int(line.split()[0]) for line in out.splitlines()]


def breakdown(tree: Path) -> tuple[int, int, int]:
    """(file data not shared with another snapshot, directory blocks, and the least
    any file system of ext4's kind needs for those directories' entries) of one tree.

    The last figure is the floor for a snapshot that is a complete tree: each entry of
    an ext4 directory takes 8 bytes plus its name rounded up to 4, whatever the
    block size, and directories cannot be hard-linked between snapshots."""
    files = dirs = entries = 0
    for root, dirnames, filenames in os.walk(tree):
        dirs += os.lstat(root).st_blocks * 512
        entries += 24  # "." and ".."
        for name in (*dirnames, *filenames):
            entries += 8 + (len(os.fsencode(name)) + 3) // 4 * 4
        for name in filenames:
            stat = os.lstat(os.path.join(root, name))
            if stat.st_nlink == 1:
                files += stat.st_blocks * 512
    return files, dirs, entries


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(seconds to run, seconds then to flush what it wrote to disk)."""
    os.sync()
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    ran = time.perf_counter() - started
    os.sync()
    return ran, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--mailboxes", type=int, default=200)
    parser.add_argument("--change", type=float, default=0.01)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/courriel-bench-backup"))
    parser.add_argument("--keep", action="store_true", help="Keep the trees afterwards.")
    args = parser.parse_args()
    if not shutil.which("rsnapshot"):
        sys.exit("rsnapshot is not installed (apt-get install rsnapshot)")
    work = args.dir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    data, ours, theirs = work / "data", work / "courriel-backups", work / "rsnapshot"
    mail = data / "mail"
    for path in (mail, ours, theirs):
        path.mkdir(parents=True)
    rng = random.Random(20240501)
    started = time.perf_counter()
    messages = build(mail, args.messages, args.mailboxes, rng)
    total = sum(p.stat().st_size for p in messages)
    print(
        f"built {len(messages):,} messages, {total / 2**20:,.0f} MiB in {args.mailboxes} "
        f"mailboxes ({time.perf_counter() - started:.0f} s)",
        flush=True,
    )

    # Like rsnapshot, nothing is flushed inside the timed run ([backup] sync = false);
    # the flush that follows each run is timed separately for both.
    env = dict(
        os.environ,
        COURRIEL_DATA=str(data),
        COURRIEL_BACKUP_DIRECTORY=str(ours),
        COURRIEL_BACKUP_SYNC="false",
    )
    env.pop("COURRIEL_DATABASE_URL", None)
    repo = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "courriel", "init"],
        env=env,
        cwd=repo,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    courriel = [sys.executable, "-m", "courriel", "backup", "run"]
    conf = work / "rsnapshot.conf"
    conf.write_text(
        "config_version\t1.2\n"
        f"snapshot_root\t{theirs}/\n"
        "cmd_cp\t/bin/cp\ncmd_rm\t/bin/rm\ncmd_rsync\t/usr/bin/rsync\n"
        "retain\tdaily\t7\nretain\tweekly\t4\n"
        "verbose\t1\nloglevel\t1\n"
        f"lockfile\t{work}/rsnapshot.pid\n"
        f"backup\t{mail}/\tlocalhost/\n"
    )
    rsnapshot = ["rsnapshot", "-c", str(conf), "daily"]

    os.chdir(repo)  # run this tree's courriel

    def ours_run() -> tuple[float, float]:
        return timed(courriel, env)

    first = (ours_run(), timed(rsnapshot))
    used_first = du(ours / "daily.0" / "mail", theirs / "daily.0")
    changed, changed_on_disk = change(messages, args.change, rng)
    second = (timed(rsnapshot), ours_run())[::-1]  # the other one goes first this time
    newest = json.loads((ours / "daily.0" / "info.json").read_text())["id"]
    ours_manifest = ours / "manifests" / f"{newest}.gz"
    ours_extra = sum(du(ours / "daily.1" / "mail", ours / "daily.0", ours_manifest)[1:])
    theirs_extra = du(theirs / "daily.1", theirs / "daily.0")[1]
    ours_files, ours_dirs, ours_entries = breakdown(ours / "daily.0")
    ours_files += ours_manifest.stat().st_blocks * 512
    theirs_files, theirs_dirs, theirs_entries = breakdown(theirs / "daily.0")

    mib = 2**20
    print(
        f"\nchanged: {int(len(messages) * args.change):,} messages "
        f"(new content {changed / mib:.1f} MiB)\n"
    )
    rows = [
        ("first snapshot", first),
        ("second snapshot", second),
    ]
    print(
        "| run | Courriel | rsnapshot | ratio (≤ 1.0) | Courriel + flush | rsnapshot + flush "
        "| ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, (mine, peer) in rows:
        print(
            f"| {label} | {mine[0]:.1f} s | {peer[0]:.1f} s | {mine[0] / peer[0]:.2f} "
            f"| {mine[1]:.1f} s | {peer[1]:.1f} s | {mine[1] / peer[1]:.2f} |"
        )
    print(
        f"\nfirst snapshot disk use: Courriel {used_first[0] / mib:,.0f} MiB, "
        f"rsnapshot {used_first[1] / mib:,.0f} MiB"
    )
    print("\n| second snapshot, extra disk use | Courriel | rsnapshot |")
    print("|---|---|---|")
    print(f"| total (du) | {ours_extra / mib:.1f} MiB | {theirs_extra / mib:.1f} MiB |")
    print(
        f"| new file data (Courriel: with its manifest) | {ours_files / mib:.1f} MiB "
        f"| {theirs_files / mib:.1f} MiB |"
    )
    print(f"| directory blocks | {ours_dirs / mib:.1f} MiB | {theirs_dirs / mib:.1f} MiB |")
    print(
        f"| directory entries alone (least possible) | {ours_entries / mib:.1f} MiB "
        f"| {theirs_entries / mib:.1f} MiB |"
    )
    print(
        f"| new file data / changed bytes on disk (≤ 1.10) | {ours_files / changed_on_disk:.2f} "
        f"| {theirs_files / changed_on_disk:.2f} |"
    )
    print(
        f"| total / changed bytes on disk (≤ 1.10) | {ours_extra / changed_on_disk:.2f} "
        f"| {theirs_extra / changed_on_disk:.2f} |"
    )
    print(
        f"| (new file data + directory entries alone) / changed bytes on disk "
        f"| {(ours_files + ours_entries) / changed_on_disk:.2f} "
        f"| {(theirs_files + theirs_entries) / changed_on_disk:.2f} |"
    )
    print(
        f"\nchanged bytes: {changed / mib:.2f} MiB of content, "
        f"{changed_on_disk / mib:.2f} MiB on disk (whole 4 kB blocks)"
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
