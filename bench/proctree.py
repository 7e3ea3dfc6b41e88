"""What a server costs, measured as a third party would: its whole process tree.

CPU is user + system time of the root process and of every descendant, including the
children it has already reaped (`cutime`/`cstime`), so a worker that exited during
the run still counts. Memory is the tree's resident set (RSS, shared pages counted
in every process) and its proportional set (PSS, each shared page split between the
processes that map it), from `/proc/PID/smaps_rollup`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CLK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def descendants(root: int) -> list[int]:
    """The root and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(_stat(int(entry))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(root: int) -> float:
    """User + system seconds of the tree, reaped children included."""
    return sum(cpu_split(root))


def cpu_split(root: int) -> tuple[float, float]:
    """User and system seconds of the tree apart, reaped children included."""
    user = system = 0
    for pid in descendants(root):
        try:
            fields = _stat(pid)
        except OSError:
            continue  # ended meanwhile: its parent's cutime has it once reaped
        user += int(fields[11]) + int(fields[13])  # utime + cutime
        system += int(fields[12]) + int(fields[14])  # stime + cstime
    return user / CLK, system / CLK


@dataclass
class Memory:
    rss_mib: float
    pss_mib: float
    processes: int


def memory(root: int) -> Memory:
    rss = pss = 0
    pids = descendants(root)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return Memory(rss / 1024, pss / 1024, len(pids))


def machine_busy_seconds() -> float:
    """CPU seconds every process of the machine has used since boot (from /proc/stat),
    to tell how much other jobs took during a run."""
    with open("/proc/stat") as handle:
        fields = handle.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK
