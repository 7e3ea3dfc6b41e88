"""A message a client is sending (an IMAP APPEND literal), written to the Maildir's
`tmp/` as it arrives, so that a 50 MB upload never sits in memory: the session writes
each chunk it reads, and the finished file is renamed into the folder (`maildir.
deliver_file`). Bare LF line ends are turned into CRLF on the way, as every stored
message has them; `size` is the size on disk, the one IMAP reports.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from courriel.mailstore.maildir import MaildirError, write_all

CHUNK = 256 * 1024
_counter = itertools.count()
_BARE_LF = re.compile(rb"(?<!\r)\n")


class Spool:
    def __init__(self, maildir: Path) -> None:
        tmp = maildir / "tmp"
        self.path = tmp / f"{time.time():.6f}.{os.getpid()}.append{next(_counter)}"
        try:
            tmp.mkdir(mode=0o700, exist_ok=True)
            self._fd: int | None = os.open(
                self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
            )
        except OSError as error:
            raise MaildirError(error.errno, f"cannot write to {tmp}: {error.strerror}") from None
        self.size = 0
        self.has_nul = False  # binary content (a literal8): see IMAP BINARY
        self._last = b""  # the last byte written (a CR may pair with the next chunk's LF)

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        if b"\0" in chunk:
            self.has_nul = True
        if b"\n" in chunk and chunk.count(b"\n") != chunk.count(b"\r\n"):
            if chunk[:1] == b"\n" and self._last == b"\r":
                head, chunk = b"\n", chunk[1:]
            else:
                head = b""
            chunk = head + _BARE_LF.sub(b"\r\n", chunk)
        self._last = chunk[-1:]
        assert self._fd is not None
        try:
            self.size += write_all(self._fd, [chunk])
        except OSError as error:
            self.discard()
            raise MaildirError(error.errno, f"cannot write {self.path}: {error.strerror}") from None

    def finish(self) -> None:
        """Make the file durable (fsync) and close it; it is then ready to deliver."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def discard(self) -> None:
        """Remove the file (a refused or abandoned APPEND leaves nothing behind)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        with contextlib.suppress(OSError):
            self.path.unlink()

    def chunks(self) -> Iterator[bytes]:
        """The content, read back in chunks (CATENATE puts parts together)."""
        with open(self.path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk


def as_spool(maildir: Path, data: bytes | Spool) -> Spool:
    """A message given in memory (a small literal the reader did not spool) as a Spool."""
    if isinstance(data, Spool):
        return data
    spool = Spool(maildir)
    spool.write(data)
    return spool
