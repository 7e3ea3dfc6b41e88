"""`dovecot-uidvalidity`: the last UIDVALIDITY given in a Maildir, so that a folder
deleted (or renamed away) and created again under the same name never gets a value a
client has already cached with other UIDs — even within the same second.

Dovecot's own scheme, kept exactly (`mailbox-uidvalidity.c`), so that both servers draw
from one sequence when they take turns on a Maildir: the file holds the last value in
8 hex digits, and an empty marker file `dovecot-uidvalidity.<hex>` is renamed to the next
value by whoever takes it (`rename` is atomic: two processes never get the same one).
The first value is the current time.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

FILENAME = "dovecot-uidvalidity"
RETRIES = 10
_fallback = 0


def _from_clock() -> int:
    """The time, or one more than the last value given this way (Dovecot's fallback)."""
    global _fallback
    now = int(time.time()) & 0xFFFFFFFF
    _fallback = now if _fallback < now else (_fallback + 1) & 0xFFFFFFFF
    return _fallback or 1


def _write(path: Path, value: int) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, f"{value:08x}".encode(), 0)
        finally:
            os.close(fd)


def _take_after(path: Path, value: int) -> int | None:
    """Rename the marker of `value` to the next value; that value, or None."""
    for _attempt in range(RETRIES):
        following = (value + 1) & 0xFFFFFFFF or 1
        try:
            os.rename(f"{path}.{value:08x}", f"{path}.{following:08x}")
            return following
        except FileNotFoundError:
            value = following  # another process took it meanwhile: try the next one
        except OSError:
            return None
    return None


def _rescan(path: Path) -> int:
    values = []
    prefix = FILENAME + "."
    with contextlib.suppress(OSError), os.scandir(path.parent) as entries:
        for entry in entries:
            if entry.name.startswith(prefix):
                with contextlib.suppress(ValueError):
                    values.append(int(entry.name[len(prefix) :], 16))
    if not values or max(values) == 0:
        value = _from_clock()
        for _attempt in range(RETRIES):
            try:
                os.close(os.open(f"{path}.{value:08x}", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o444))
                break
            except FileExistsError:
                value = _from_clock()
            except OSError:
                return value
        _write(path, value)
        return value
    if min(values) != max(values):  # duplicates: keep the highest
        with contextlib.suppress(OSError):
            os.unlink(f"{path}.{min(values):08x}")
    taken = _take_after(path, max(values))
    if taken is None:
        return _from_clock()
    _write(path, taken)
    return taken


def next_value(maildir: Path) -> int:
    """A UIDVALIDITY never given before in this Maildir (by us or by Dovecot)."""
    path = maildir / FILENAME
    try:
        with open(path, "rb") as handle:
            current = int(handle.read(8), 16)
    except (OSError, ValueError):
        return _rescan(path)
    if current == 0:
        return _rescan(path)
    taken = _take_after(path, current)
    if taken is None:
        return _rescan(path)
    _write(path, taken)
    return taken
