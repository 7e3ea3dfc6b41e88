"""Helper processes that must never outlive the process that started them (SMTP
workers, backup workers): an orphan would keep a port or keep writing a snapshot
that a later run is replacing."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None, signum: int = signal.SIGTERM) -> None:
    """Ask Linux to send `signum` to this process when its parent dies; send it now if
    the parent (pid `parent`, or any parent when None) is already gone."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signum)
    gone = os.getppid() != parent if parent is not None else os.getppid() == 1
    if gone:
        os.kill(os.getpid(), signum)


def usable_cores() -> int:
    """The cores this process may run on (`taskset`, a container's cpuset), which is
    what "one worker per core" means; `os.cpu_count()` counts the whole machine."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1
