"""Teaching rspamd from what users do: a message moved or copied into the Junk folder
is spam, one moved out of it (anywhere but Trash) is ham. The IMAP server calls
`note_move` once per COPY/MOVE; the lesson goes to rspamd's controller in the
background, so the user's command never waits for it (nor fails with it)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from courriel.config import Config, get_config
from courriel.inbound import rspamd
from courriel.inbound.settings import FilterSettings

if TYPE_CHECKING:
    from courriel.mailstore.index import FolderIndex, Message

log = logging.getLogger("courriel.inbound")
# The files are read right away, on the IMAP server's event loop (a MOVE renames them
# next): a user moving a whole folder teaches with a sample, and reads stay short.
MAX_MESSAGES = 20
MAX_SIZE = 2 * 1024 * 1024  # rspamd learns from the start of a larger message anyway
MAX_TOTAL = 8 * 1024 * 1024
_pending: set[asyncio.Task[None]] = set()


def _folder_kind(name: str) -> str:
    top = name.strip().split("/")[-1].lower()
    if top in ("junk", "spam", "junk e-mail", "junk email"):
        return "junk"
    if top in ("trash", "deleted items", "deleted messages"):
        return "trash"
    return "other"


def lesson(source: str, target: str) -> bool | None:
    """True: learn as spam; False: learn as ham; None: nothing to learn."""
    before, after = _folder_kind(source), _folder_kind(target)
    if after == "junk" and before != "junk":
        return True
    if before == "junk" and after == "other":
        return False
    return None


_cached: tuple[Config, FilterSettings] | None = None


def _settings() -> FilterSettings:
    """Read once per configuration (this runs for every COPY and MOVE into or out of Junk)."""
    global _cached
    config = get_config()
    if _cached is None or _cached[0] is not config:
        _cached = (config, FilterSettings.from_config(config))
    return _cached[1]


def note_move(source: str, target: str, index: FolderIndex, messages: list[Message]) -> None:
    """The IMAP server's one call: `messages` of `index` (folder `source`) are moved or
    copied to folder `target`. Their files are read now, before a MOVE renames them."""
    spam = lesson(source, target)
    if spam is None or not messages:
        return
    try:
        _schedule(spam, index, messages)
    except Exception:  # learning is a bonus: the user's command goes on regardless
        log.exception("rspamd: could not prepare a lesson")


def _schedule(spam: bool, index: FolderIndex, messages: list[Message]) -> None:
    settings = _settings()
    if not settings.controller_url:
        return
    contents: list[bytes] = []
    total = 0
    for message in messages[:MAX_MESSAGES]:
        if total >= MAX_TOTAL:
            break
        try:
            with open(index.file(message), "rb") as handle:
                contents.append(handle.read(min(MAX_SIZE, MAX_TOTAL - total)))
        except OSError:
            continue
        total += len(contents[-1])
    if contents:
        task = asyncio.get_running_loop().create_task(_teach(settings, contents, spam))
        _pending.add(task)
        task.add_done_callback(_pending.discard)


async def _teach(settings: FilterSettings, contents: list[bytes], spam: bool) -> None:
    kind = "spam" if spam else "ham"
    for content in contents:
        try:
            outcome = await rspamd.learn(
                settings.controller_url,
                content,
                spam=spam,
                password=settings.password,
                timeout=settings.timeout,
            )
            log.info("rspamd: message %s as %s", outcome, kind)
        except rspamd.RspamdUnavailable as error:
            log.warning("rspamd: could not learn a message as %s: %s", kind, error)
