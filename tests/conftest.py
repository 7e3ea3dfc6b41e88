"""Test set-up shared by every suite.

Each test session gets its own data directory, and Argon2 runs with small costs so
that hundreds of real password hashes stay fast (the algorithm is the same).
PostgreSQL is used when COURRIEL_DATABASE_URL is set (CI runs the suite both ways).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

_SESSION_DATA = tempfile.mkdtemp(prefix="courriel-test-")
os.environ.setdefault("COURRIEL_DATA", _SESSION_DATA)
os.environ.setdefault("COURRIEL_PASSWORDS_ARGON2_TIME_COST", "1")
os.environ.setdefault("COURRIEL_PASSWORDS_ARGON2_MEMORY_KIB", "1024")
os.environ.setdefault("COURRIEL_GENERAL_HOSTNAME", "maximusconfessor.all2all.org")
# The suite runs every command as whoever runs the suite (root in CI), in pytest's
# private temporary directories; tests/test_privileges.py checks the service user.
os.environ.setdefault("COURRIEL_GENERAL_USER", "")
os.environ.pop("COURRIEL_CONFIG", None)
os.environ["DJANGO_SETTINGS_MODULE"] = "courriel.settings"

import django  # noqa: E402

django.setup()

pytest_plugins = [
    "tests.fixtures.accounts",
    "tests.fixtures.processes",
    "tests.fixtures.panel",
    "tests.fixtures.api",
    "tests.fixtures.browser",
    "tests.fixtures.platform",
    "tests.fixtures.backups",
    "tests.fixtures.greylist",
    "tests.fixtures.nsd",
    "tests.fixtures.dovecot",
    "tests.fixtures.rspamd",
]


import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# A property test may run slowly on a loaded machine; it may not fail there: no
# per-example deadline, no "too slow" health check (issue 18).
settings.register_profile("courriel", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("courriel")


@pytest.fixture(autouse=True)
def own_data_directory(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own data directory (Maildirs, queue), so no test sees the
    mail another one left behind."""
    from courriel.config import get_config

    config = get_config()
    base = tmp_path_factory.mktemp("data")
    monkeypatch.setitem(config.general, "data_dir", str(base))
    monkeypatch.setitem(config.mail, "root", str(base / "mail"))
    # In-process tests change accounts inside a transaction that never commits, so
    # the routing cache would never hear of it: resolve afresh every time here.
    monkeypatch.setitem(config.smtp, "routing_cache_seconds", 0)


@pytest.fixture(autouse=True)
def no_language_left_active() -> Iterator[None]:
    """A request in French leaves French active in its thread (LocaleMiddleware does
    not undo it): the next test's services would speak French. Each test starts in
    the default language."""
    from django.utils import translation

    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def no_event_loop_left_running(request: pytest.FixtureRequest) -> None:
    """Playwright's sync API keeps an asyncio loop marked as running in the test's
    thread for as long as the browser lives; a later test's asyncio.run() would then
    fail far from the cause. A browser lives for one module only, and this names the
    culprit wherever a loop is left behind."""
    import asyncio

    if "chromium" in request.fixturenames:
        return
    loop = asyncio.events._get_running_loop()
    assert loop is None, f"an earlier test or fixture left {loop!r} running in this thread"
