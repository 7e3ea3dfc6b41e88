"""Maildir++ quota accounting (`maildirsize`), kept right by every writer.

The file's first line is the limit (`<bytes>S`, `0S` for none); every later line is
a change `<bytes> <messages>`, appended atomically (O_APPEND) by delivery (+) and by
IMAP/POP3 expunges (-). Reading sums the lines. When the file grows past 5120 bytes
(the Maildir++ limit) it is compacted to its sum; when it is missing or damaged it is
recalculated from the files (a full scan costs as much as the mailbox is large, so it
is not done on the delivery path otherwise). Dovecot's `maildir` quota backend reads
and writes the same file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from pathlib import Path

SIZEFILE = "maildirsize"
COMPACT_ABOVE = 5120


def _size_from_name(name: str) -> int | None:
    for part in name.split(":")[0].split(","):
        if part.startswith("S="):
            try:
                return int(part[2:])
            except ValueError:
                return None
    return None


def folders(maildir: Path) -> list[Path]:
    """The INBOX and every Maildir++ subfolder (`.Sent`, `.Archive.2024`...)."""
    if not maildir.is_dir():
        return []
    found = [maildir]
    with os.scandir(maildir) as entries:
        for entry in entries:
            if entry.name.startswith(".") and entry.name not in {".", ".."} and entry.is_dir():
                found.append(Path(entry.path))
    return found


def scan(maildir: Path, *, exclude_trash: bool = False) -> tuple[int, int]:
    """(bytes, messages) of every folder, counted from the files themselves."""
    total = count = 0
    for folder in folders(maildir):
        if exclude_trash and folder.name == ".Trash":
            continue
        for sub in ("cur", "new"):
            try:
                entries = os.scandir(folder / sub)
            except OSError:
                continue
            with entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    size = _size_from_name(entry.name)
                    if size is None:
                        try:
                            size = entry.stat().st_size
                        except OSError:
                            continue
                    total += size
                    count += 1
    return total, count


def _header(limit: int | None) -> str:
    return f"{limit or 0}S\n"


def recalculate(maildir: Path, limit: int | None = None) -> tuple[int, int]:
    """Rewrite `maildirsize` from the files (atomically); returns (bytes, messages)."""
    if limit is None:
        limit = read_limit(maildir)
    total, count = scan(maildir)
    _write(maildir, _header(limit), total, count)
    return total, count


def _write(maildir: Path, header: str, total: int, count: int) -> None:
    tmp = maildir / f".{SIZEFILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        tmp.write_text(header + f"{total} {count}\n", "ascii")
        os.replace(tmp, maildir / SIZEFILE)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def read_limit(maildir: Path) -> int | None:
    try:
        with open(maildir / SIZEFILE, "rb") as handle:
            first = handle.readline().decode("ascii", "replace")
    except OSError:
        return None
    for part in first.strip().split(","):
        if part.endswith("S"):
            try:
                return int(part[:-1]) or None
            except ValueError:
                return None
    return None


# Parsed sums by file identity: on the delivery path usage is asked several times per
# message, and a stat is much cheaper than reading and summing the file again.
_parsed: dict[Path, tuple[tuple[int, int, int], tuple[int, int]]] = {}
_parsed_lock = threading.Lock()


@functools.lru_cache(maxsize=4096)
def _size_file(maildir: Path) -> Path:
    """A Maildir's `maildirsize`, asked on every delivery: joined once."""
    return maildir / SIZEFILE


def usage(maildir: Path) -> tuple[int, int]:
    """(bytes, messages) used, from `maildirsize` (recalculated when needed)."""
    path = _size_file(maildir)
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return recalculate(maildir) if maildir.is_dir() else (0, 0)
    except OSError:
        return scan(maildir)
    identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _parsed_lock:
        known = _parsed.get(path)
    if known is not None and known[0] == identity:
        return known[1]
    try:
        raw = path.read_bytes()
    except OSError:
        return scan(maildir)
    header, _, changes = raw.partition(b"\n")
    try:
        numbers = changes.split()
        if len(numbers) % 2:
            raise ValueError("odd number of fields")
        total, count = sum(map(int, numbers[0::2])), sum(map(int, numbers[1::2]))
    except ValueError:
        return recalculate(maildir)
    if total < 0 or count < 0 or not header:
        return recalculate(maildir)
    if len(raw) > COMPACT_ABOVE:
        _write(maildir, header.decode("ascii", "replace") + "\n", total, count)
    else:
        with _parsed_lock:
            if len(_parsed) > 50_000:
                _parsed.clear()
            _parsed[path] = (identity, (total, count))
    return total, count


def add(maildir: Path, size: int, count: int) -> None:
    """Record a change (+ on delivery, - on expunge) with one atomic append."""
    path = _size_file(maildir)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError:
        recalculate(maildir)  # includes the message just written
        return
    except OSError:
        return
    line = f"{size} {count}\n".encode("ascii")
    try:
        before = os.fstat(fd)
        os.write(fd, line)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    # Keep the parsed sum current when nobody else wrote in between, so the next
    # usage() is a stat, not a read of the file.
    with _parsed_lock:
        known = _parsed.get(path)
        if (
            known is not None
            and known[0] == (before.st_ino, before.st_size, before.st_mtime_ns)
            and after.st_size == before.st_size + len(line)
        ):
            total, messages = known[1]
            _parsed[path] = (
                (after.st_ino, after.st_size, after.st_mtime_ns),
                (total + size, messages + count),
            )
        else:
            _parsed.pop(path, None)


def set_limit(maildir: Path, limit: int | None) -> None:
    """Make the limit line say what the panel says (None: unlimited, `0S`): Dovecot's
    quota, in production mode, reads the same file."""
    if maildir.is_dir():
        total, count = scan(maildir)
        _write(maildir, _header(limit), total, count)


def maildir_usage(maildir: Path) -> int:
    """Bytes used by a mailbox (0 when its Maildir does not exist yet)."""
    return usage(maildir)[0] if maildir.is_dir() else 0
