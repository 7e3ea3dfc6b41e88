"""Restoring mail from a snapshot into the live mailboxes, never overwriting anything.

Restored messages are written with `courriel.mailstore.maildir.deliver` (durable, with
quota accounting) into a folder "Restored YYYY-MM-DD" (the snapshot's date; a message
of the snapshot's "Sent" goes to "Restored YYYY-MM-DD/Sent"), or with `in_place` back
into the folder they came from. A message already there (same content) is skipped, so
running a restore twice restores nothing the second time, and a restore interrupted
by a full disk can simply be run again.

The whole restore must fit in the mailbox quota and the domain's mail quota before
anything is written: an over-quota restore is refused with nothing restored.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path

import xxhash

from courriel.accounts.models import Domain, Mailbox
from courriel.accounts.permissions import (
    Actor,
    get_domain,
    get_mailbox,
    require_domain_manager,
    visible_mailboxes,
)
from courriel.backup import manifest, store
from courriel.backup.policy import BackupPolicy, load_policy
from courriel.config import get_config
from courriel.errors import LimitError, NotFoundError, ServiceUnavailableError
from courriel.i18n import format_size
from courriel.i18n import gettext as _
from courriel.mailstore import quota
from courriel.mailstore.maildir import MaildirError, deliver, folder_path

_FLAGS = ":2,"
_MESSAGE_DIRS = ("cur", "new")


@dataclass
class Candidate:
    mailbox: Mailbox
    folder: str  # "" for INBOX, "Sent", "Archive/2024"
    entry: manifest.Entry
    source: Path

    @property
    def flags(self) -> str:
        name = os.fsdecode(self.entry.name)
        return name.partition(_FLAGS)[2] if _FLAGS in name else ""


@dataclass
class RestoreReport:
    snapshot: str
    taken_at: str
    folder: str | None  # "Restored 2024-05-01", None when in place
    restored: list[dict[str, object]] = field(default_factory=list)
    already_present: int = 0
    bytes: int = 0
    missing_mailboxes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class RestoreIncomplete(ServiceUnavailableError):
    """The disk filled up (or failed) during a restore: what was done is in `report`."""

    def __init__(self, message: str, report: RestoreReport) -> None:
        super().__init__(message)
        self.report = report


class QuotaExceededError(LimitError):
    pass


def restore_mail(
    actor: Actor,
    domain_name: str,
    *,
    login: str | None = None,
    folder: str | None = None,
    message: str | None = None,
    snapshot: str | None = None,
    in_place: bool = False,
    policy: BackupPolicy | None = None,
) -> RestoreReport:
    """Restore a domain, a mailbox, a folder or one message (Message-ID or file name)."""
    policy = policy or load_policy()
    domain = get_domain(actor, domain_name)
    require_domain_manager(actor, domain)
    if login:
        mailboxes = [get_mailbox(actor, login, domain)]
    else:
        mailboxes = list(visible_mailboxes(actor).filter(domain=domain).order_by("login"))
    directory = store.ensure_directory(policy)
    with store.readers_lock(directory):
        found = store.find(directory, snapshot)
        listed = manifest.load(directory, found.id)
        day = found.taken_at.date().isoformat()
        report = RestoreReport(
            found.name, found.info["taken_at"], None if in_place else f"Restored {day}"
        )
        plan: list[tuple[Mailbox, list[Candidate]]] = []
        for mailbox in mailboxes:
            candidates = list(_candidates(listed, found, mailbox, folder, message))
            if not candidates and not _in_snapshot(listed, mailbox):
                report.missing_mailboxes.append(mailbox.login)
                continue
            plan.append((mailbox, candidates))
        if message and not any(c for _, c in plan):
            where = _("%(login)s's mailbox") % {"login": login} if login else domain.display_name
            raise NotFoundError(
                _(
                    "No message %(message)s in %(where)s in snapshot %(snapshot)s (%(day)s). "
                    "Give its Message-ID or its file name, or try an older snapshot."
                )
                % {"message": repr(message), "where": where, "snapshot": found.name, "day": day}
            )
        plan = [(m, _not_present(m, c, report)) for m, c in plan]
        _check_quota(domain, plan)
        _write(actor, domain, plan, report)
    return report


def _maildir(mailbox: Mailbox) -> Path:
    return mailbox.maildir_path(get_config().mail_root)


def _in_snapshot(listed: manifest.Manifest, mailbox: Mailbox) -> bool:
    return os.fsencode(mailbox.maildir) in listed.dirs


def _folder_of(sub: str) -> str | None:
    """Maildir-relative directory -> folder name ("" INBOX), None if not messages."""
    parts = sub.split("/")
    if parts[-1] not in _MESSAGE_DIRS:
        return None
    if len(parts) == 1:
        return ""
    if len(parts) == 2 and parts[0].startswith("."):
        return parts[0][1:].replace(".", "/")
    return None


def _candidates(
    listed: manifest.Manifest,
    snapshot: store.Snapshot,
    mailbox: Mailbox,
    folder: str | None,
    message: str | None,
) -> Iterator[Candidate]:
    root = os.fsencode(mailbox.maildir)
    wanted = None if folder is None else ("" if folder.upper() == "INBOX" else folder.strip("/"))
    for rel in listed.directories_under(root):
        if rel == root:
            continue
        name = _folder_of(os.fsdecode(rel[len(root) + 1 :]))
        if name is None or (wanted is not None and name != wanted):
            continue
        prefix = rel + b"/"
        for line in listed.dirs[rel]:
            digest, size, mtime, file_name = manifest.split_line(line)
            entry = manifest.Entry(prefix + file_name, size, mtime, digest.decode("ascii"))
            source = snapshot.tree / os.fsdecode(entry.path)
            if message and not _matches(message, file_name, source):
                continue
            yield Candidate(mailbox, name, entry, source)


def _matches(wanted: str, file_name: bytes, source: Path) -> bool:
    name = os.fsdecode(file_name)
    if wanted in (name, name.partition(_FLAGS)[0]):
        return True
    return message_id(source) == wanted.strip().strip("<>")


def message_id(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(64 * 1024)
    except OSError:
        return None
    end = head.find(b"\r\n\r\n")
    headers = BytesHeaderParser().parsebytes(head if end < 0 else head[: end + 4])
    value = headers.get("Message-ID")
    return str(value).strip().strip("<>") if value else None


def _content_key(path: Path) -> str:
    digest = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _not_present(
    mailbox: Mailbox, candidates: list[Candidate], report: RestoreReport
) -> list[Candidate]:
    """Drop the messages the live mailbox already has (same content where they would
    go, or, in place, the same message anywhere in the mailbox)."""
    if not candidates:
        return []
    maildir = _maildir(mailbox)
    live_names: set[str] = set()
    live_by_size: dict[tuple[str, int], list[Path]] = {}
    for folder_dir in quota.folders(maildir):
        for sub in _MESSAGE_DIRS:
            try:
                entries = list(os.scandir(folder_dir / sub))
            except OSError:
                continue
            for entry in entries:
                live_names.add(entry.name.partition(_FLAGS)[0])
                size = entry.stat().st_size
                live_by_size.setdefault((str(folder_dir), size), []).append(Path(entry.path))
    kept = []
    for candidate in candidates:
        if (
            report.folder is None
            and os.fsdecode(candidate.entry.name).partition(_FLAGS)[0] in live_names
        ):
            report.already_present += 1
            continue
        target = str(folder_path(maildir, _target_folder(report, candidate)))
        same_size = live_by_size.get((target, candidate.entry.size), [])
        if any(_content_key(path) == candidate.entry.checksum for path in same_size):
            report.already_present += 1
            continue
        kept.append(candidate)
    return kept


def _target_folder(report: RestoreReport, candidate: Candidate) -> str:
    if report.folder is None:
        return candidate.folder
    return f"{report.folder}/{candidate.folder}" if candidate.folder else report.folder


def _check_quota(domain: Domain, plan: list[tuple[Mailbox, list[Candidate]]]) -> None:
    """Everything fits, or nothing is restored."""
    from courriel.accounts.services.limits import disk_usage

    problems = []
    total = 0
    for mailbox, candidates in plan:
        size = sum(c.entry.size for c in candidates)
        total += size
        if mailbox.quota is not None and size:
            used = quota.usage(_maildir(mailbox))[0]
            if used + size > mailbox.quota:
                problems.append(
                    _("%(login)s would need %(size)s more but uses %(used)s of its %(quota)s quota")
                    % {
                        "login": mailbox.login,
                        "size": format_size(size),
                        "used": format_size(used),
                        "quota": format_size(mailbox.quota),
                    }
                )
    limit = domain.top.effective_plan.mail_quota
    if limit is not None and total:
        used = disk_usage(domain)
        if used + total > limit:
            problems.append(
                _(
                    "%(domain)s would need %(size)s more but uses %(used)s of its "
                    "%(quota)s of mail space"
                )
                % {
                    "domain": domain.top.display_name,
                    "size": format_size(total),
                    "used": format_size(used),
                    "quota": format_size(limit),
                }
            )
    if problems:
        raise QuotaExceededError(
            _(
                "Nothing was restored: the restore does not fit in the quota (%(problems)s). "
                "Free some space or raise the quota, or restore less (one folder or one "
                "message)."
            )
            % {"problems": "; ".join(problems)}
        )


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(256 * 1024):
            yield chunk


def _write(
    actor: Actor,
    domain: Domain,
    plan: list[tuple[Mailbox, list[Candidate]]],
    report: RestoreReport,
) -> None:
    from courriel.audit.log import record

    try:
        for mailbox, candidates in plan:
            maildir = _maildir(mailbox)
            for candidate in candidates:
                target = _target_folder(report, candidate)
                stored = deliver(
                    maildir,
                    _chunks(candidate.source),
                    folder=target,
                    flags=candidate.flags,
                    mtime=candidate.entry.mtime_ns / 1e9,
                    seen_by_client=bool(candidate.flags),
                )
                if target:
                    _subscribe(maildir, target)
                report.restored.append(
                    {
                        "mailbox": mailbox.login,
                        "folder": target or "INBOX",
                        "file": stored.path.name,
                        "size": stored.size,
                    }
                )
                report.bytes += stored.size
    except (MaildirError, OSError) as error:
        total = sum(len(c) for _, c in plan)
        raise RestoreIncomplete(
            _(
                "The restore stopped after %(done)s of %(total)s messages: %(error)s. The "
                "restored ones are in place; free space and run the same restore again to "
                "restore the rest (messages already there are skipped)."
            )
            % {"done": len(report.restored), "total": total, "error": error.strerror or error},
            report,
        ) from None
    finally:
        if report.restored:
            record(
                actor,
                "backup.restore",
                report.folder or "in place",
                domain=domain.name,
                snapshot=report.snapshot,
                messages=len(report.restored),
                bytes=report.bytes,
            )


def _subscribe(maildir: Path, folder: str) -> None:
    """List the restored folder in Dovecot's `subscriptions`, so clients show it."""
    from courriel.mailstore.folders import subscribe

    subscribe(maildir, folder)
