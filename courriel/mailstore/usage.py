"""How much space a Maildir uses, for quotas shown in the panel and CLI.

Uses the Maildir++ `maildirsize` file when it is there (kept by delivery and the
IMAP/POP3 servers); otherwise counts the message files (`,S=` size in the name
when present, else the file size).
"""

from __future__ import annotations

import os
from pathlib import Path


def _size_from_name(name: str) -> int | None:
    for part in name.split(":")[0].split(","):
        if part.startswith("S="):
            try:
                return int(part[2:])
            except ValueError:
                return None
    return None


def scan_usage(maildir: Path) -> tuple[int, int]:
    """(bytes, messages) of every folder of a Maildir++ tree, counted from the files."""
    total = count = 0
    if not maildir.is_dir():
        return 0, 0
    folders = [maildir] + [
        maildir / entry.name
        for entry in os.scandir(maildir)
        if entry.name.startswith(".") and entry.is_dir() and entry.name not in {".", ".."}
    ]
    for folder in folders:
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


def maildir_usage(maildir: Path) -> int:
    """Bytes used: from `maildirsize` when present, else counted."""
    sizefile = maildir / "maildirsize"
    try:
        lines = sizefile.read_text("ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return scan_usage(maildir)[0]
    total = 0
    for line in lines[1:]:
        parts = line.split()
        if parts:
            try:
                total += int(parts[0])
            except ValueError:
                return scan_usage(maildir)[0]
    return max(total, 0)
