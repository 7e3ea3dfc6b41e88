"""Message content as it arrives over SMTP/LMTP DATA, never all in memory when big.

Up to `SPILL_ABOVE` bytes a message stays in memory (nearly all mail: the fast path
is unchanged). Beyond, it goes to a file of the data directory's spool as it
arrives, and travels as a `Body`: its header block at hand (for the checks, the
trace headers and the rules that read headers), the rest read from the file only
when written somewhere (a Maildir, the queue), a chunk at a time.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

from courriel.delivery.message import ContentCheck

SPILL_ABOVE = 1024 * 1024  # bytes of DATA held in memory before they go to a file
HEAD_MAX = 256 * 1024  # a header block longer than this is cut for the checks
CHUNK = 1024 * 1024
_counter = itertools.count(1)


def spool_directory(data_dir: Path) -> Path:
    return data_dir / "spool" / "incoming"


def clean_spool(data_dir: Path) -> int:
    """Remove what an interrupted DATA left (a crash, a killed process): nothing in it
    was ever acknowledged. Files of running processes (other SMTP workers, named
    `<pid>.<n>`) are theirs."""
    removed = 0
    directory = spool_directory(data_dir)
    if directory.is_dir():
        for entry in directory.iterdir():
            pid = entry.name.partition(".")[0]
            if pid.isdigit() and int(pid) != os.getpid() and _running(int(pid)):
                continue
            with contextlib.suppress(OSError):
                entry.unlink()
                removed += 1
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Body:
    """A big message in a spool file: `head` (its header block, possibly rewritten by
    the checks) followed by the file's bytes from `offset` on."""

    def __init__(self, path: Path, size: int, head: bytes) -> None:
        self.path = path
        self.head = head
        self.offset = len(head)
        self.rest = size - len(head)

    def __len__(self) -> int:
        return len(self.head) + self.rest

    def replace_head(self, head: bytes) -> Body:
        """The same message with another header block (fields added or removed)."""
        self.head = head
        return self

    def chunks(self) -> Iterator[bytes]:
        yield self.head
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            while chunk := handle.read(CHUNK):
                yield chunk

    def read(self) -> bytes:
        """The whole message in memory: only where a library needs it at once."""
        return b"".join(self.chunks())

    def write_to(self, fd: int) -> int:
        """Write the message to an open file, the rest straight from the spool file
        (the kernel copies it: it never passes through this process's memory)."""
        written = _write_all(fd, self.head)
        with open(self.path, "rb") as source:
            offset, left = self.offset, self.rest
            while left > 0:
                sent = os.sendfile(fd, source.fileno(), offset, min(left, 1 << 30))
                if sent == 0:
                    raise OSError("spool file shorter than expected")
                offset += sent
                left -= sent
                written += sent
        return written

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def _write_all(fd: int, data: bytes) -> int:
    view, done = memoryview(data), 0
    while done < len(view):
        done += os.write(fd, view[done:])
    return done


class DataSink:
    """Where DATA goes while it arrives, with the content checks done on the way."""

    def __init__(
        self, directory: Path, spill_above: int = SPILL_ABOVE, *, checked: bool = True
    ) -> None:
        self.directory = directory
        self.spill_above = spill_above
        self.blocks: list[bytes] = []  # held in memory until spill_above
        self.held = 0
        self.fd: int | None = None
        self.path: Path | None = None
        self.head = b""
        self.size = 0
        self.check = ContentCheck() if checked else None

    def write(self, block: bytes) -> None:
        if self.check is not None:
            self.check.feed(block)
        self.size += len(block)
        if self.fd is None:
            self.blocks.append(block)
            self.held += len(block)
            if self.held > self.spill_above:
                self._spill()
        else:
            _write_all(self.fd, block)

    def _spill(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = self.directory / f"{os.getpid()}.{next(_counter)}"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        held = b"".join(self.blocks)
        self.head = header_prefix(held[:HEAD_MAX])
        _write_all(self.fd, held)
        self.blocks, self.held = [], 0

    def finish(self) -> bytes | Body:
        if self.fd is None:
            # A message read in one block is returned as it is, without a copy.
            return self.blocks[0] if len(self.blocks) == 1 else b"".join(self.blocks)
        os.close(self.fd)
        self.fd = None
        assert self.path is not None
        return Body(self.path, self.size, self.head)

    def abort(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
        self.blocks, self.held = [], 0


def header_prefix(start: bytes) -> bytes:
    """The header block with its blank line (all of `start` when it has none)."""
    end = start.find(b"\r\n\r\n")
    return start if end < 0 else start[: end + 4]
