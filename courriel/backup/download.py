"""Downloading a whole mailbox from the panel: an mbox file or a Maildir `.tar.gz`.

The manual tells customers to back up their own mail with desktop tools; this gives
them the file directly. Both formats are generated while they are sent, a chunk at a
time, from the live Maildir: nothing is copied in full, in memory or on disk, so a
mailbox of many gigabytes costs a few hundred kilobytes of memory.

mbox is "mboxrd" (lines starting with `>*From ` get one more `>`), LF line ends, with
`Status`/`X-Status` headers from the Maildir flags (as mutt and Thunderbird read them)
and `X-Folder` naming the folder each message came from.
"""

from __future__ import annotations

import os
import tarfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from courriel.accounts.addresses import normalize_domain
from courriel.accounts.models import Mailbox
from courriel.accounts.permissions import Actor, get_mailbox
from courriel.config import get_config
from courriel.errors import NotFoundError, ValidationError
from courriel.i18n import gettext as _
from courriel.mailstore import quota

CHUNK = 64 * 1024
FORMATS = ("mbox", "maildir")


@dataclass
class Download:
    filename: str
    content_type: str
    chunks: Iterator[bytes]


def open_download(
    actor: Actor, login: str, fmt: str, *, domain: str | None = None, folder: str | None = None
) -> Download:
    """Check the permission now (a mailbox user: their own; an owner: their domains'
    mailboxes; the provider: any), then stream lazily."""
    mailbox = get_mailbox(actor, login)
    if domain is not None and mailbox.domain.name != normalize_domain(domain):
        raise NotFoundError(
            _("No mailbox with login %(login)s in %(domain)s.")
            % {"login": repr(login), "domain": domain}
        )
    if fmt not in FORMATS:
        raise ValidationError(
            _("Unknown format %(format)s: choose mbox or maildir.") % {"format": repr(fmt)}
        )
    from courriel.cluster.placement import fresh_home, is_here

    home = fresh_home(mailbox.pk)
    if not is_here(home):  # another hosting server holds it: streamed from there
        from courriel.cluster.fetch import remote_download

        chunks = remote_download(home, mailbox.pk, fmt, folder)
        return Download(*_name_and_type(mailbox, fmt), chunks)
    return local_download(mailbox, fmt, folder)


def _name_and_type(mailbox: Mailbox, fmt: str) -> tuple[str, str]:
    stamp = time.strftime("%Y-%m-%d")
    if fmt == "mbox":
        return f"{mailbox.login}-{stamp}.mbox", "application/mbox"
    return f"{mailbox.login}-{stamp}.tar.gz", "application/gzip"


def local_download(mailbox: Mailbox, fmt: str, folder: str | None) -> Download:
    """The download of a mailbox held here (permission already checked)."""
    maildir = mailbox.maildir_path(get_config().mail_root)
    folders = _folders(maildir, folder)
    name, content_type = _name_and_type(mailbox, fmt)
    if fmt == "mbox":
        return Download(name, content_type, mbox_chunks(folders))
    return Download(name, content_type, maildir_tar_chunks(maildir, f"{mailbox.login}/Maildir"))


def _folders(maildir: Path, folder: str | None) -> list[tuple[str, Path]]:
    """(name, directory) of the folders, INBOX first."""
    found = []
    for path in quota.folders(maildir):
        name = "INBOX" if path == maildir else path.name[1:].replace(".", "/")
        found.append((name, path))
    found.sort(key=lambda item: (item[0] != "INBOX", item[0].lower()))
    if folder is None:
        return found
    wanted = [item for item in found if item[0].lower() == folder.strip("/").lower()]
    if not wanted:
        raise NotFoundError(_("No folder %(folder)s in this mailbox.") % {"folder": repr(folder)})
    return wanted


def _messages(directory: Path) -> list[Path]:
    names = []
    for sub in ("cur", "new"):
        try:
            names += [directory / sub / name for name in os.listdir(directory / sub)]
        except OSError:
            continue
    return sorted(names, key=lambda p: p.name)


# --- mbox -----------------------------------------------------------------------------


def _status_headers(name: str, folder: str) -> bytes:
    flags = name.partition(":2,")[2]
    status = b"RO" if "S" in flags else b"O"
    extra = "".join(
        letter for flag, letter in (("R", "A"), ("F", "F"), ("T", "D")) if flag in flags
    )
    out = b"Status: " + status + b"\n"
    if extra:
        out += b"X-Status: " + extra.encode() + b"\n"
    return out + b"X-Folder: " + folder.encode("utf-8", "replace") + b"\n"


def _sender(head: bytes) -> bytes:
    for line in head.split(b"\n"):
        if line.lower().startswith(b"return-path:"):
            address = line.split(b":", 1)[1].strip().strip(b"<>").strip()
            if address and b" " not in address:
                return address
        if not line.strip():
            break
    return b"MAILER-DAEMON"


def mbox_chunks(folders: list[tuple[str, Path]]) -> Iterator[bytes]:
    out = bytearray()
    for folder, directory in folders:
        for path in _messages(directory):
            try:
                handle = open(path, "rb")  # noqa: SIM115 - closed by the `with` below
                stat = os.fstat(handle.fileno())
            except OSError:
                continue  # expunged while the download runs
            with handle:
                head = handle.peek(4096)[:4096]
                when = time.asctime(time.gmtime(stat.st_mtime)).encode()
                out += b"From " + _sender(head) + b" " + when + b"\n"
                out += _status_headers(path.name, folder)
                at_line_start = True
                last = b"\n"
                while piece := handle.readline(CHUNK):
                    if at_line_start and piece.lstrip(b">").startswith(b"From "):
                        out += b">"
                    at_line_start = piece.endswith(b"\n")
                    if piece.endswith(b"\r\n"):
                        piece = piece[:-2] + b"\n"
                    out += piece
                    last = piece[-1:]
                    if len(out) >= CHUNK:
                        yield bytes(out)
                        out.clear()
                out += b"\n\n" if last != b"\n" else b"\n"
            if len(out) >= CHUNK:
                yield bytes(out)
                out.clear()
    if out:
        yield bytes(out)


# --- Maildir archive ------------------------------------------------------------------


def maildir_tar_chunks(maildir: Path, top: str) -> Iterator[bytes]:
    """A gzip-compressed tar of the Maildir (tmp/ contents left out), written member by
    member: tar headers come from `tarfile`, the data is read and compressed in chunks."""
    gzip = zlib.compressobj(6, zlib.DEFLATED, 31)
    written = 0

    def emit(data: bytes) -> bytes:
        nonlocal written
        written += len(data)
        return gzip.compress(data)

    for root, dirs, files in os.walk(maildir):
        dirs.sort()
        rel = os.path.relpath(root, maildir)
        name = top if rel == "." else f"{top}/{rel}"
        yield emit(_header(name, Path(root), tarfile.DIRTYPE))
        if os.path.basename(root) == "tmp":
            dirs.clear()
            continue
        for file_name in sorted(files):
            path = Path(root) / file_name
            try:
                handle = open(path, "rb")  # noqa: SIM115 - closed by the `with` below
            except OSError:
                continue  # expunged meanwhile
            with handle:
                size = os.fstat(handle.fileno()).st_size
                yield emit(_header(f"{name}/{file_name}", path, tarfile.REGTYPE, size))
                left = size
                while left > 0:
                    data = handle.read(min(CHUNK, left))
                    if not data:  # shrank while reading: keep the promised size
                        data = b"\0" * min(CHUNK, left)
                    left -= len(data)
                    yield emit(data)
                if size % tarfile.BLOCKSIZE:
                    yield emit(b"\0" * (tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE))
    end = b"\0" * (2 * tarfile.BLOCKSIZE)
    written_end = written + len(end)
    end += b"\0" * (-written_end % tarfile.RECORDSIZE)
    yield gzip.compress(end) + gzip.flush()


def _header(name: str, path: Path, kind: bytes, size: int = 0) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    try:
        stat = path.stat()
        info.mtime = int(stat.st_mtime)
        info.mode = stat.st_mode & 0o777
    except OSError:
        info.mtime = int(time.time())
        info.mode = 0o700 if kind == tarfile.DIRTYPE else 0o600
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


__all__ = ["FORMATS", "Download", "Mailbox", "open_download"]
