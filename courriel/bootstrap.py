"""Start-up of every command: Django set-up, and the first-run initialisation that
makes `courriel serve` work on an empty machine (data directory, database schema,
default plans, this hosting server, TLS certificate, provider admin account)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import courriel
from courriel.config import Config, get_config
from courriel.errors import ConfigError, ServiceUnavailableError

_ready = False


def setup_django() -> None:
    global _ready
    if _ready:
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "courriel.settings")
    import django

    django.setup()
    _ready = True


@dataclass
class InitResult:
    migrated: bool
    plans_created: int
    certificate_created: bool
    admin_username: str | None
    admin_password: str | None  # printed once, never stored in clear


def _local_ip() -> str | None:
    """This machine's address as its own name resolves, if it is not a loopback one."""
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        return None
    return None if address.startswith("127.") else address


def initialize(config: Config | None = None) -> InitResult:
    """Idempotent: safe to run at every start."""
    config = config or get_config()
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    config.mail_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_config_template(config)
    setup_django()
    from django.core.management import call_command
    from django.db import DatabaseError, connection
    from django.db.migrations.executor import MigrationExecutor

    from courriel.tls import ensure_certificate

    try:
        executor = MigrationExecutor(connection)
        refuse_newer_database(executor)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            call_command("migrate", verbosity=0, interactive=False)
    except DatabaseError as error:
        raise ServiceUnavailableError(
            f"Cannot reach the database ({error}). Check [database] url or "
            "COURRIEL_DATABASE_URL, then try again."
        ) from None

    from courriel.accounts.services.plans import seed_default_plans

    plans = seed_default_plans()
    _ensure_local_server(config)
    certificate = ensure_certificate(config)
    username, password = _ensure_admin()
    return InitResult(bool(pending), plans, certificate, username, password)


def refuse_newer_database(executor: object) -> None:
    """A database that a newer Courriel has upgraded is never used by an older one
    (its tables may mean something else now): stop with what to do instead."""
    from django.db.migrations.executor import MigrationExecutor

    assert isinstance(executor, MigrationExecutor)
    ours = {key[0] for key in executor.loader.graph.nodes}
    unknown = sorted(
        f"{app}.{name}"
        for app, name in executor.loader.applied_migrations
        if app in ours and (app, name) not in executor.loader.graph.nodes
    )
    if unknown:
        raise ConfigError(
            "This database was upgraded by a newer version of Courriel "
            f"({', '.join(unknown[:3])}{'...' if len(unknown) > 3 else ''}); this one is "
            f"{courriel.__version__}. Install the newer version again (or restore the "
            "database from the backup taken before the upgrade)."
        )


def pending_migrations() -> list[str]:
    """What `courriel upgrade` would apply."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    refuse_newer_database(executor)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


def _write_config_template(config: Config) -> None:
    """Leave a documented configuration file in the data directory, every key commented
    out (so it changes nothing until the operator edits it)."""
    from courriel.config import config_path, default_config_text

    path = config_path()
    if path.exists() or path.parent != config.data_dir:
        return
    lines = [
        line if not line.strip() or line.startswith(("#", "[")) else f"# {line}"
        for line in default_config_text().splitlines()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _ensure_local_server(config: Config) -> None:
    from courriel.accounts.addresses import normalize_hostname
    from courriel.accounts.models import HostingServer

    if HostingServer.objects.exists():
        return
    try:
        hostname = normalize_hostname(config.hostname)
    except Exception:
        hostname = "localhost"
    HostingServer.objects.create(
        name=hostname.split(".")[0][:100] or "local",
        hostname=hostname,
        ip_address=_local_ip(),
        accepts_domains=True,
    )


def _ensure_admin() -> tuple[str | None, str | None]:
    from django.contrib.auth.models import User

    from courriel.accounts.passwords import generate_password

    if User.objects.filter(is_superuser=True).exists():
        return None, None
    password = generate_password(20, login="admin")
    User.objects.create_superuser(username="admin", email="", password=password)
    return "admin", password
