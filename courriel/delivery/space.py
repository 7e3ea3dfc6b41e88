"""Free disk space before accepting mail: a full disk must give "452 4.3.1, try
later" at the door, not an accepted message that cannot be written."""

from __future__ import annotations

import os
import time
from functools import lru_cache
from pathlib import Path

from courriel.config import get_config
from courriel.units import parse_size

_CHECK_EVERY = 0.2  # seconds a free-space reading is trusted
_readings: dict[Path, tuple[float, int]] = {}


def _free(path: Path) -> int:
    now = time.monotonic()
    reading = _readings.get(path)
    if reading is not None and now - reading[0] < _CHECK_EVERY:
        return reading[1]
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    stats = os.statvfs(probe)
    free = stats.f_bavail * stats.f_frsize
    _readings[path] = (now, free)
    return free


@lru_cache(maxsize=8)
def _reserve(text: str) -> int:
    return parse_size(text, allow_unlimited=False) or 0


def enough_space(size: int) -> bool:
    """Room for `size` more bytes on the mail and the data (journal, queue) disks."""
    config = get_config()
    reserve = _reserve(config.mail.min_free_space)
    needed = reserve + 2 * size  # the journal copy and the Maildir copy
    return all(_free(path) >= needed for path in {config.mail_root, config.data_dir})
