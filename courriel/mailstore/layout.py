"""Where mailboxes live on disk and how they are created and retired.

Layout, like the manual's `/var/www/htdocs/monsite/homes/monsite0001/Maildir`:
`<mail root>/<domain>/homes/<login>/Maildir`, a Maildir++ tree that Dovecot can
serve as it is (`mail_location = maildir:~/Maildir`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

SUBDIRS = ("cur", "new", "tmp")


def domain_home(mail_root: Path, domain: str) -> Path:
    return mail_root / domain


def relative_maildir(domain: str, login: str) -> str:
    return f"{domain}/homes/{login}/Maildir"


def create_maildir(path: Path) -> None:
    """Create a Maildir (cur, new, tmp) with the special folders every mail client
    expects (Sent, Drafts, Trash, Junk), subscribed, private to the service user;
    idempotent."""
    from courriel.mailstore.folders import subscribe_special_folders
    from courriel.mailstore.maildir import SPECIAL_FOLDERS, create_folder

    for sub in SUBDIRS:
        (path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    for folder in SPECIAL_FOLDERS:
        create_folder(path, folder)
    subscribe_special_folders(path)


def retire(path: Path, deleted_root: Path) -> Path | None:
    """Move a deleted mailbox's home aside instead of destroying mail at once.

    The provider can restore it or purge `<data>/deleted` when sure; backups keep
    their own copies either way.
    """
    home = path.parent if path.name == "Maildir" else path
    if not home.exists():
        return None
    deleted_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = (
        deleted_root / f"{time.strftime('%Y%m%d-%H%M%S')}-{home.parent.parent.name}-{home.name}"
    )
    suffix = 0
    while target.exists():
        suffix += 1
        target = target.with_name(f"{target.name}.{suffix}")
    os.rename(home, target)
    return target
