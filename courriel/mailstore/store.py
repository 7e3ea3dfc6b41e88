"""One user's mail as IMAP and POP3 see it: folders by name, each backed by the shared
`FolderIndex`, and the operations that touch more than one folder or the quota
(append, copy, move). The protocol sessions call only this, never the file system."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from courriel.mailstore import folders, index, metadata, quota
from courriel.mailstore.folders import FolderError
from courriel.mailstore.index import FolderGone, FolderIndex, Message
from courriel.mailstore.maildir import deliver_file
from courriel.mailstore.spool import Spool


class OverQuota(Exception):
    pass


class UserStore:
    def __init__(self, maildir: Path, quota_limit: int | None) -> None:
        self.maildir = maildir
        self.quota_limit = quota_limit

    # --- folders ---------------------------------------------------------------------------

    def open(self, name: str) -> FolderIndex:
        """The index of an existing folder (call `close` when done)."""
        name = folders.normalize(name)
        try:
            folders.decode_mutf7(name)
        except ValueError as error:
            raise FolderError(f"Invalid mailbox name: {error}", "NONEXISTENT") from None
        if not folders.exists(self.maildir, name):
            raise FolderError(f"Mailbox {name} does not exist.", "NONEXISTENT")
        try:
            return index.open_folder(folders.path_of(self.maildir, name), self.maildir)
        except FolderGone:
            raise FolderError(f"Mailbox {name} does not exist.", "NONEXISTENT") from None

    def close(self, folder: FolderIndex) -> None:
        index.release(folder)

    def names(self) -> list[str]:
        return folders.list_names(self.maildir)

    def create(self, name: str, special_use: str = "") -> None:
        """A new folder; `special_use` (CREATE-SPECIAL-USE) is kept with it."""
        folders.create(self.maildir, name)
        if special_use:
            metadata.update(
                self.maildir, folders.check_name(name), {metadata.SPECIAL_USE: special_use}
            )

    def delete(self, name: str) -> None:
        name = folders.normalize(name)
        path = folders.path_of(self.maildir, name)
        folders.delete(self.maildir, name)
        index.forget(path)
        metadata.forget(self.maildir, name)

    def rename(self, old: str, new: str) -> None:
        moved = folders.rename(self.maildir, old, new)
        for before, _after in moved:
            if before != "INBOX":
                index.forget(folders.path_of(self.maildir, before))
        metadata.rename(self.maildir, [m for m in moved if m[0] != "INBOX"])

    def special_uses(self) -> dict[str, str]:
        """Every folder's special-use attribute: the usual names (Sent, Drafts, Junk,
        Trash), and what clients set (CREATE-SPECIAL-USE, METADATA)."""
        uses = {name: use for name, use in folders.SPECIAL_USE.items()}
        uses.update(metadata.special_uses(self.maildir))
        return uses

    def subscriptions(self) -> list[str]:
        return folders.subscriptions(self.maildir)

    def subscribe(self, name: str, on: bool) -> None:
        (folders.subscribe if on else folders.unsubscribe)(self.maildir, name)

    # --- quota -----------------------------------------------------------------------------

    def usage(self) -> tuple[int, int]:
        return quota.usage(self.maildir)

    def check_room(self, size: int) -> None:
        if self.quota_limit is not None and self.usage()[0] + size > self.quota_limit:
            raise OverQuota("Quota exceeded: delete some messages or empty the Trash first.")

    # --- messages --------------------------------------------------------------------------

    def append(
        self, folder: FolderIndex, name: str, spool: Spool, letters: str, when: datetime | None
    ) -> int:
        """Store a client's message, already written and fsynced in `tmp/` (see
        `spool`), by renaming it into the folder; returns its UID."""
        name = folders.normalize(name)
        with folder.own_change():
            stored = deliver_file(
                self.maildir,
                spool.path,
                spool.size,
                folder="" if name == "INBOX" else name,
                flags=letters,
                mtime=when.timestamp() if when else None,
            )
            return folder.adopt(stored.path)

    def remove(self, folder: FolderIndex, uids: list[int]) -> None:
        """Take back messages just stored (a MULTIAPPEND that failed half-way)."""
        messages = [folder.by_uid[uid] for uid in uids if uid in folder.by_uid]
        if messages:
            folder.expunge(messages, 0)

    def copy(
        self, source: FolderIndex, messages: list[Message], target: FolderIndex
    ) -> list[tuple[int, int]]:
        """Hard-link copies (no extra disk; quota counts them like Dovecot does)."""
        self.check_room(sum(source.size(m) for m in messages))
        pairs = []
        total = 0
        with target.changes():  # the new mod-sequences written once for the command
            for message in messages:
                try:
                    uid = target.add_file(source.file(message), message.info, link=True)
                except FileNotFoundError:
                    continue
                total += source.size(message)
                pairs.append((message.uid, uid))
        if pairs:
            quota.add(self.maildir, total, len(pairs))
        return pairs

    def move(
        self, source: FolderIndex, messages: list[Message], target: FolderIndex, origin: int
    ) -> list[tuple[int, int]]:
        pairs = []
        with source.changes(), target.changes():
            for message in messages:
                uid = source.move_to(message, target, origin)
                if uid is not None:
                    pairs.append((message.uid, uid))
        return pairs
