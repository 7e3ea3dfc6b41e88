"""Maildir++ folders as IMAP mailboxes: names, hierarchy, creation, deletion, renaming,
subscriptions and the special-use folders.

IMAP names use "/" as hierarchy separator and are kept in modified UTF-7 on the wire and
on disk, as Dovecot does: "Archive/2024" is the directory `.Archive.2024`. A "." inside
one level cannot be represented in Maildir++ (Dovecot refuses it too).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import shutil
from pathlib import Path

from courriel.mailstore import quota
from courriel.mailstore.maildir import SPECIAL_FOLDERS, create_folder, folder_path

SEPARATOR = "/"
SUBSCRIPTIONS = "subscriptions"
SPECIAL_USE = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash", "Junk": "\\Junk"}
MAX_NAME = 255
_TRASHED = "..courriel-deleted-"
assert set(SPECIAL_USE) == set(SPECIAL_FOLDERS)


class FolderError(ValueError):
    """A folder operation a client asked for cannot be done; the message says why."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code  # IMAP response code: CANNOT, NONEXISTENT, ALREADYEXISTS...


# --- modified UTF-7 (RFC 3501 5.1.3) ------------------------------------------------------


def encode_mutf7(text: str) -> str:
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in text:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


_MUTF7_RUN = re.compile(r"&([A-Za-z0-9+,]*)-")


def decode_mutf7(name: str) -> str:
    """Unicode form of a modified UTF-7 name; ValueError if it is not valid."""
    if any(not 0x20 <= ord(c) <= 0x7E for c in name):
        raise ValueError("mailbox names are 7-bit (modified UTF-7)")

    def run(match: re.Match[str]) -> str:
        data = match.group(1)
        if not data:
            return "&"
        padded = data.replace(",", "/") + "=" * (-len(data) % 4)
        try:
            return base64.b64decode(padded, validate=True).decode("utf-16-be")
        except (ValueError, UnicodeDecodeError):
            raise ValueError(f"invalid modified UTF-7 in {name!r}") from None

    decoded = _MUTF7_RUN.sub(run, name)
    if "&" in _MUTF7_RUN.sub("", name):
        raise ValueError(f"stray '&' in {name!r}")
    return decoded


# --- names --------------------------------------------------------------------------------


def normalize(name: str) -> str:
    """INBOX is case-insensitive; everything else is kept as given."""
    if name.upper() == "INBOX":
        return "INBOX"
    if name.upper().startswith("INBOX" + SEPARATOR):
        return "INBOX" + name[5:]
    return name


def check_name(name: str) -> str:
    """A name a client may create: valid modified UTF-7, no empty level, no dot."""
    name = normalize(name)
    try:
        decode_mutf7(name)
    except ValueError as error:
        raise FolderError(f"Invalid mailbox name: {error}", "CANNOT") from None
    if not name or len(name) > MAX_NAME:
        raise FolderError("Mailbox names have 1 to 255 characters.", "CANNOT")
    levels = name.split(SEPARATOR)
    if any(not level for level in levels):
        raise FolderError("Mailbox names cannot have empty levels ('//').", "CANNOT")
    if any("." in level or level in {"..", "."} for level in levels) or "~" in name[:1]:
        raise FolderError("Mailbox names cannot contain '.' in this storage.", "CANNOT")
    return name


def path_of(maildir: Path, name: str) -> Path:
    return folder_path(maildir, "" if normalize(name) == "INBOX" else name)


def exists(maildir: Path, name: str) -> bool:
    return (path_of(maildir, name) / "cur").is_dir()


def list_names(maildir: Path) -> list[str]:
    """Every folder that exists on disk, INBOX first."""
    return list(identities(maildir))


def identities(maildir: Path) -> dict[str, int]:
    """Every folder that exists on disk (INBOX first) with the inode of its directory,
    which a rename keeps: IMAP NOTIFY tells a renamed folder from a deleted one and a
    new one by it. One directory read, as `list_names`."""
    names = {"INBOX": 0}
    try:
        entries = list(os.scandir(maildir))
    except OSError:
        return names
    found = []
    for entry in entries:
        if (
            entry.name.startswith(".")
            and entry.name not in {".", ".."}
            and not entry.name.startswith("..")
            and entry.is_dir()
        ):
            found.append((entry.name[1:].replace(".", SEPARATOR), entry.inode()))
    names.update(sorted(found))
    return names


def special_use(name: str) -> str | None:
    return SPECIAL_USE.get(name)


# --- changes ------------------------------------------------------------------------------


def create(maildir: Path, name: str) -> Path:
    name = check_name(name)
    if name == "INBOX" or exists(maildir, name):
        raise FolderError(f"Mailbox {name} already exists.", "ALREADYEXISTS")
    levels = name.split(SEPARATOR)
    for depth in range(1, len(levels)):  # RFC 3501: create the superior names too
        parent = SEPARATOR.join(levels[:depth])
        if parent != "INBOX" and not exists(maildir, parent):
            create_folder(maildir, parent)
    return create_folder(maildir, name)


def delete(maildir: Path, name: str) -> None:
    """Remove a folder and its messages (quota given back); INBOX and folders with
    sub-folders stay, as in Dovecot."""
    name = normalize(name)
    if name == "INBOX":
        raise FolderError("INBOX cannot be deleted.", "CANNOT")
    if not exists(maildir, name):
        raise FolderError(f"Mailbox {name} does not exist.", "NONEXISTENT")
    if any(other.startswith(name + SEPARATOR) for other in list_names(maildir)):
        raise FolderError(f"Mailbox {name} has sub-folders: delete or move them first.", "INUSE")
    path = path_of(maildir, name)
    size = count = 0
    for sub in ("cur", "new"):
        with contextlib.suppress(OSError), os.scandir(path / sub) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                found = quota._size_from_name(entry.name)
                if found is None:
                    with contextlib.suppress(OSError):
                        found = entry.stat().st_size
                size += found or 0
                count += 1
    trashed = maildir / f"{_TRASHED}{secrets.token_hex(6)}"
    os.rename(path, trashed)
    if count:
        quota.add(maildir, -size, -count)
    shutil.rmtree(trashed, ignore_errors=True)
    unsubscribe(maildir, name)


def rename(maildir: Path, old: str, new: str) -> list[tuple[str, str]]:
    """Rename a folder with its sub-folders; returns the (old, new) names moved.
    Renaming INBOX moves its messages into the new folder (RFC 3501) and keeps INBOX."""
    old = normalize(old)
    new = check_name(new)
    if not exists(maildir, old):
        raise FolderError(f"Mailbox {old} does not exist.", "NONEXISTENT")
    if new == "INBOX" or exists(maildir, new):
        raise FolderError(f"Mailbox {new} already exists.", "ALREADYEXISTS")
    if new.startswith(old + SEPARATOR):
        raise FolderError("A mailbox cannot be moved inside itself.", "CANNOT")
    if old == "INBOX":
        target = create_folder(maildir, new)
        for sub in ("new", "cur"):
            with os.scandir(maildir / sub) as entries:
                for entry in entries:
                    if not entry.name.startswith("."):
                        os.rename(entry.path, target / sub / entry.name)
        return [(old, new)]
    moved = []
    for name in list_names(maildir):
        if name == old or name.startswith(old + SEPARATOR):
            moved.append((name, new + name[len(old) :]))
    for before, after in moved:
        os.rename(path_of(maildir, before), path_of(maildir, after))
    subscribed = subscriptions(maildir)
    if any(before in subscribed for before, _ in moved):
        renames = dict(moved)
        _write_subscriptions(maildir, [renames.get(n, n) for n in subscribed])
    return moved


# --- subscriptions ------------------------------------------------------------------------
#
# Dovecot's `subscriptions` file, version 2: a `V\t2\n\n` header, then one name per line
# with its levels separated by tabs (so that the file does not depend on the separator).
# Files without the header are version 1: one name per line as IMAP shows it (Courriel
# wrote those before, with "/").

_SUBS_HEADER = "V\t2\n\n"
_TAB_ESCAPES = {"1": "\x01", "t": "\t", "r": "\r", "n": "\n"}


def _tab_unescape(level: str) -> str:
    return re.sub("\x01(.)", lambda m: _TAB_ESCAPES.get(m.group(1), m.group(1)), level)


def _tab_escape(level: str) -> str:
    return (
        level.replace("\x01", "\x011")
        .replace("\t", "\x01t")
        .replace("\r", "\x01r")
        .replace("\n", "\x01n")
    )


def subscriptions(maildir: Path) -> list[str]:
    """The names in the `subscriptions` file (not the special-use folders, which are
    subscribed by definition: see `subscribed`)."""
    try:
        text = (maildir / SUBSCRIPTIONS).read_text("utf-8", "replace")
    except OSError:
        return []
    if text.startswith(_SUBS_HEADER):
        lines = text[len(_SUBS_HEADER) :].splitlines()
        return [
            SEPARATOR.join(_tab_unescape(p) for p in line.split("\t")) for line in lines if line
        ]
    return [line for line in text.splitlines() if line and not line.startswith("V\t")]


def subscribed(maildir: Path, existing: list[str] | None = None) -> set[str]:
    """Every subscribed name: the file's, and the special-use folders that exist, which
    are always subscribed (Dovecot's `auto = subscribe`, as providers configure it:
    Roundcube and others show only subscribed folders)."""
    names = set(subscriptions(maildir))
    present = existing if existing is not None else list_names(maildir)
    return names | {name for name in present if name in SPECIAL_USE}


def _write_subscriptions(maildir: Path, names: list[str]) -> None:
    lines = ["\t".join(_tab_escape(level) for level in n.split(SEPARATOR)) for n in names]
    tmp = maildir / f".{SUBSCRIPTIONS}.{secrets.token_hex(4)}.tmp"
    tmp.write_text(_SUBS_HEADER + "".join(f"{line}\n" for line in dict.fromkeys(lines)), "utf-8")
    os.replace(tmp, maildir / SUBSCRIPTIONS)


def subscribe(maildir: Path, name: str) -> None:
    name = normalize(name)
    current = subscriptions(maildir)
    if name not in current:
        _write_subscriptions(maildir, [*current, name])


def unsubscribe(maildir: Path, name: str) -> None:
    name = normalize(name)
    current = subscriptions(maildir)
    if name in current:
        _write_subscriptions(maildir, [n for n in current if n != name])


def subscribe_special_folders(maildir: Path) -> None:
    """Write the special-use folders into a Maildir that has no `subscriptions` file yet
    (a new mailbox, or one created before Courriel subscribed them), so that Dovecot
    without `auto = subscribe` shows them subscribed too."""
    if (maildir / SUBSCRIPTIONS).exists():
        return
    present = [name for name in SPECIAL_FOLDERS if exists(maildir, name)]
    if present:
        with contextlib.suppress(OSError):
            _write_subscriptions(maildir, present)
