"""Database dumps: one per run, consistent, kept `database_days` days.

SQLite is copied with its online backup API (a consistent copy while the services keep
writing); PostgreSQL with `pg_dump --format=custom` (one snapshot transaction). Each
dump has a sidecar `.json` with its checksum, so `verify` notices a damaged dump
before anyone needs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import xxhash

from courriel.errors import NotFoundError, ServiceUnavailableError, ValidationError

SUBDIR = "database"


class DumpError(Exception):
    """The database could not be dumped (reported; the mail snapshot still counts)."""


@dataclass
class Dump:
    name: str
    path: Path
    info: dict[str, Any]

    @property
    def taken_at(self) -> datetime:
        return datetime.fromisoformat(self.info["taken_at"])


def _settings() -> dict[str, Any]:
    from courriel.backup.policy import database_settings

    return database_settings()


def _is_sqlite(db: dict[str, Any]) -> bool:
    return db["ENGINE"].endswith("sqlite3")


def _pg_env(db: dict[str, Any], name: str | None = None) -> dict[str, str]:
    """libpq variables, so that the password never shows in a process list."""
    env = dict(os.environ)
    for var, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER")):
        if db.get(key):
            env[var] = str(db[key])
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    env["PGDATABASE"] = name or db["NAME"]
    return env


def checksum(path: Path) -> str:
    digest = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    try:
        completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError:
        raise DumpError(
            f"{command[0]} is not installed: install the PostgreSQL client "
            f"(Debian: postgresql-client) to {what}."
        ) from None
    if completed.returncode != 0:
        detail = (completed.stderr.strip().splitlines() or ["no message"])[-1]
        raise DumpError(f"{command[0]} failed to {what}: {detail}")


def _sqlite_copy(source: Path | str, target: Path | str, *, standalone: bool = True) -> None:
    # "file:..." names are URIs (the shared in-memory database of the test suite).
    src = sqlite3.connect(source, timeout=30, uri=str(source).startswith("file:"))
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            if standalone:  # a dump is one file, without -wal beside it
                dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def dump(directory: Path, taken_at: datetime) -> Dump:
    """Write a new dump into `<directory>/database/`; visible only when complete."""
    db = _settings()
    folder = directory / SUBDIR
    folder.mkdir(mode=0o700, exist_ok=True)
    engine = "sqlite" if _is_sqlite(db) else "postgresql"
    suffix = "sqlite3" if engine == "sqlite" else "pgdump"
    name = f"courriel-{taken_at:%Y%m%d-%H%M%S-%f}.{suffix}"
    final = folder / name
    tmp = folder / f".{name}.tmp"
    try:
        if engine == "sqlite":
            live = str(db["NAME"])
            if not live.startswith("file:") and not Path(live).exists():
                raise DumpError(f"there is no database at {live} yet (run `courriel init`)")
            _sqlite_copy(live, tmp)
        else:
            _run(
                ["pg_dump", "--format=custom", "--no-owner", f"--file={tmp}"],
                _pg_env(db),
                "dump the database",
            )
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        info = {
            "engine": engine,
            "taken_at": taken_at.isoformat(),
            "size": tmp.stat().st_size,
            "checksum": checksum(tmp),
        }
        sidecar = folder / f"{name}.json"
        sidecar.write_text(json.dumps(info, indent=1), "utf-8")
        os.replace(tmp, final)
    except sqlite3.Error as error:
        raise DumpError(f"SQLite backup failed: {error}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return Dump(name, final, info)


def discard(directory: Path, name: str) -> None:
    """Remove the dump of a run that failed, so a full disk gets its space back."""
    for path in (directory / SUBDIR / name, directory / SUBDIR / f"{name}.json"):
        with contextlib.suppress(OSError):
            path.unlink()


def dumps(directory: Path) -> list[Dump]:
    """Every complete dump, newest first."""
    folder = directory / SUBDIR
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.startswith(".") or entry.name.endswith(".json"):
                continue
            try:
                info = json.loads(Path(entry.path + ".json").read_text("utf-8"))
            except (OSError, ValueError):
                continue
            found.append(Dump(entry.name, Path(entry.path), info))
    return sorted(found, key=lambda d: d.taken_at, reverse=True)


def prune(directory: Path, days: int, now: datetime) -> list[str]:
    """Delete dumps older than `days` days; the newest one always stays."""
    removed = []
    for old in dumps(directory)[1:]:
        if old.taken_at < now - timedelta(days=days):
            for path in (old.path, old.path.with_name(old.name + ".json")):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            removed.append(old.name)
    return removed


def find(directory: Path, ref: str | None) -> Dump:
    every = dumps(directory)
    if not every:
        raise NotFoundError(f"There is no database dump in {directory / SUBDIR}.")
    if not ref:
        return every[0]
    for candidate in every:
        if ref in {candidate.name, candidate.name.rsplit(".", 1)[0]}:
            return candidate
    raise NotFoundError(
        f"No database dump {ref!r}. Dumps: {', '.join(d.name for d in every[:5])}..."
    )


# --- checking and restoring -----------------------------------------------------------


def check(found: Dump, scratch: Path) -> str:
    """Restore the dump into a scratch place and read it back; returns a description.
    Raises ValidationError when the dump is damaged."""
    if checksum(found.path) != found.info.get("checksum"):
        raise ValidationError(
            f"database dump {found.name} is damaged (checksum differs from when it was "
            "written): use an older dump."
        )
    if found.info["engine"] == "sqlite":
        copy = scratch / "restored.sqlite3"
        try:
            _sqlite_copy(found.path, copy)
            conn = sqlite3.connect(copy)
            try:
                status = conn.execute("PRAGMA integrity_check").fetchone()[0]
                mailboxes = conn.execute("SELECT count(*) FROM accounts_mailbox").fetchone()[0]
                domains = conn.execute("SELECT count(*) FROM accounts_domain").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error as error:
            raise ValidationError(f"database dump {found.name} does not restore: {error}") from None
        if status != "ok":
            raise ValidationError(f"database dump {found.name} is damaged: {status}")
        return f"restores: {domains} domains, {mailboxes} mailboxes"
    return _check_postgresql(found)


def _check_postgresql(found: Dump) -> str:
    import psycopg

    db = _settings()
    try:
        _run(["pg_restore", "--list", str(found.path)], _pg_env(db), "read the dump")
    except DumpError as error:
        raise ValidationError(f"database dump {found.name} is unreadable: {error}") from None
    scratch = f"courriel_verify_{uuid.uuid4().hex[:10]}"
    params = {
        k: db[v]
        for k, v in (("host", "HOST"), ("port", "PORT"), ("user", "USER"), ("password", "PASSWORD"))
        if db.get(v)
    }
    try:
        with psycopg.connect(dbname=db["NAME"], autocommit=True, **params) as conn:
            conn.execute(f'CREATE DATABASE "{scratch}"')
    except psycopg.Error:
        return "archive readable (no permission to restore it into a scratch database)"
    try:
        _run(
            ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={scratch}", str(found.path)],
            _pg_env(db, scratch),
            "restore the dump",
        )
        with psycopg.connect(dbname=scratch, **params) as conn:
            mailboxes = conn.execute("SELECT count(*) FROM accounts_mailbox").fetchone()
            domains = conn.execute("SELECT count(*) FROM accounts_domain").fetchone()
    except (DumpError, psycopg.Error) as error:
        raise ValidationError(f"database dump {found.name} does not restore: {error}") from None
    finally:
        with psycopg.connect(dbname=db["NAME"], autocommit=True, **params) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    counts = (domains[0] if domains else 0, mailboxes[0] if mailboxes else 0)
    return f"restores: {counts[0]} domains, {counts[1]} mailboxes"


def restore(found: Dump, directory: Path, now: datetime) -> Dump:
    """Replace the live database by the dump, after dumping the live one (returned),
    so that the restore itself can be undone."""
    with tempfile.TemporaryDirectory() as scratch:
        check(found, Path(scratch))
    safety = dump(directory, now)
    from django.db import connections

    connections.close_all()
    db = _settings()
    try:
        if found.info["engine"] == "sqlite":
            if not _is_sqlite(db):
                raise ValidationError("This is a SQLite dump and the live database is PostgreSQL.")
            _sqlite_copy(found.path, str(db["NAME"]), standalone=False)
        else:
            if _is_sqlite(db):
                raise ValidationError("This is a PostgreSQL dump and the live database is SQLite.")
            _run(
                [
                    "pg_restore",
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--single-transaction",
                    "--exit-on-error",
                    f"--dbname={db['NAME']}",
                    str(found.path),
                ],
                _pg_env(db),
                "restore the database",
            )
    except (DumpError, sqlite3.Error) as error:
        raise ServiceUnavailableError(
            f"The database restore failed ({error}); the live database was dumped first "
            f"as {safety.name}."
        ) from None
    return safety
