"""A big stored message read from its file piece by piece: IMAP FETCH and POP3 RETR of
a 50 MB message never hold it in memory. `MessageFile` offers what the MIME parser and
the FETCH renderer use of `bytes` (len, slices, find, count, startswith) by reading the
file with `pread`, a window at a time, and `chunks` to send a range of it.

Files written by others with bare LF line ends (Dovecot's LDA writes them) are served
with CRLF like every message: a big one is first copied, converted, to a temporary file
in the Maildir's `tmp/`, which is removed when the message is closed.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

WINDOW = 256 * 1024
_BARE_LF = re.compile(rb"(?<!\r)\n")


class MessageFile:
    def __init__(self, fd: int, size: int, temporary: Path | None = None) -> None:
        self.fd = fd
        self.size = size
        self.temporary = temporary

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        if self.temporary is not None:
            with contextlib.suppress(OSError):
                self.temporary.unlink()

    def __enter__(self) -> MessageFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.size

    def _span(self, start: int | None, end: int | None) -> tuple[int, int]:
        start = 0 if start is None else max(0, start if start >= 0 else self.size + start)
        end = self.size if end is None else min(self.size, end if end >= 0 else self.size + end)
        return start, max(start, end)

    def __getitem__(self, key: slice) -> bytes:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("MessageFile supports plain slices only")
        start, end = self._span(key.start, key.stop)
        return os.pread(self.fd, end - start, start) if end > start else b""

    def startswith(self, prefix: bytes, start: int = 0) -> bool:
        return self[start : start + len(prefix)] == prefix

    def find(self, sub: bytes, start: int | None = None, end: int | None = None) -> int:
        start, end = self._span(start, end)
        overlap = max(len(sub) - 1, 0)
        position = start
        while position < end:
            stop = min(end, position + WINDOW + overlap)
            found = self[position:stop].find(sub)
            if found >= 0:
                return position + found
            if stop >= end:
                break
            position += WINDOW
        return -1

    def count(self, sub: bytes, start: int | None = None, end: int | None = None) -> int:
        """Occurrences of a one-byte `sub` (line ends), window by window."""
        assert len(sub) == 1
        start, end = self._span(start, end)
        return sum(self[p : min(end, p + WINDOW)].count(sub) for p in range(start, end, WINDOW))

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        start, end = self._span(start, end)
        for position in range(start, end, WINDOW):
            yield self[position : min(end, position + WINDOW)]


def open_crlf(path: str, tmp: Path, known_crlf: bool = False) -> MessageFile | None:
    """The message file, as CRLF: as it is when it already has CRLF line ends (known
    from the sizes in its name, or checked), else a converted copy in `tmp` (None if
    the file is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    size = os.fstat(fd).st_size
    source = MessageFile(fd, size)
    if known_crlf or not _needs_conversion(source):
        return source
    target = tmp / f".courriel-crlf.{os.getpid()}.{fd}.{id(source):x}"
    out = os.open(target, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    written = 0
    last = b""
    try:
        for chunk in source.chunks():
            head = b""
            if chunk[:1] == b"\n" and last == b"\r":
                head, chunk = b"\n", chunk[1:]
            data = head + _BARE_LF.sub(b"\r\n", chunk)
            last = data[-1:]
            view = memoryview(data)
            while view:
                view = view[os.write(out, view) :]
            written += len(data)
    except BaseException:
        os.close(out)
        target.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    return MessageFile(out, written, temporary=target)


def _needs_conversion(source: MessageFile) -> bool:
    previous = b""
    for chunk in source.chunks():
        if _BARE_LF.search(previous + chunk):  # previous: a CR may pair with an LF here
            return True
        previous = chunk[-1:]
    return False
