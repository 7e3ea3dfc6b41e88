"""Django settings, derived entirely from the Courriel configuration (courriel.config).

Operators never edit this file: they set `[section] key` values in the TOML file or
COURRIEL_* variables, and this module turns them into what Django expects.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from courriel.config import get_config
from courriel.errors import ConfigError

CONFIG = get_config()
BASE_DIR = Path(__file__).resolve().parent


def _secret_key() -> str:
    configured = CONFIG.general.secret_key
    if configured:
        return configured
    path = CONFIG.secret_key_path
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def database_settings(url: str, sqlite_path: Path) -> dict[str, object]:
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(sqlite_path),
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;",
            },
            "TEST": {"NAME": os.environ.get("COURRIEL_TEST_SQLITE") or None},
            # The mail servers' worker threads keep their connection (opening one per
            # SMTP command would cost more than the query).
            "CONN_MAX_AGE": None,
        }
    parsed = urlparse(url)
    if parsed.scheme not in {"postgresql", "postgres", "pgsql"}:
        raise ConfigError(
            f"[database] url: unsupported scheme {parsed.scheme!r}; "
            "use postgresql://user:password@host:5432/dbname or leave empty for SQLite"
        )
    query = parse_qs(parsed.query)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or "courriel",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": query.get("host", [parsed.hostname or ""])[0],
        "PORT": str(parsed.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def _local_time_zone() -> str:
    configured = CONFIG.general.time_zone or os.environ.get("TZ", "")
    if configured:
        return configured
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    try:
        return Path("/etc/timezone").read_text().strip() or "UTC"
    except OSError:
        return "UTC"


SECRET_KEY = _secret_key()
DEBUG = CONFIG.general.debug
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "courriel.accounts",
    "courriel.audit",
    "courriel.delivery",
    "courriel.cluster",
    "courriel.greylist",
    "courriel.inbound",
    "courriel.stats",
    "courriel.panel",
    "courriel.api",
]

# django-ninja's templates and static files (the API docs page without a CDN), found
# without importing it: as an installed app it would load ninja, pydantic and
# django.test into every process (13 MB), including SMTP workers and a serve without
# the web panel. The API imports it when its URLs are first loaded.
_NINJA = Path(importlib.util.find_spec("ninja").submodule_search_locations[0])  # type: ignore[union-attr,index]
STATICFILES_DIRS = [_NINJA / "static"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "courriel.panel.middleware.RejectNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "courriel.panel.middleware.TwoFactorRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "courriel.panel.middleware.SecurityHeadersMiddleware",
    "courriel.panel.middleware.CourrielErrorMiddleware",
]

ROOT_URLCONF = "courriel.urls"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [_NINJA / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "courriel.panel.context.panel",
            ],
        },
    }
]

DATABASES = {"default": database_settings(CONFIG.database_url, CONFIG.sqlite_path)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "courriel.accounts.auth.MailboxBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

LANGUAGE_CODE = CONFIG.general.language
LANGUAGES = [("en", "English"), ("fr", "Français"), ("nl", "Nederlands")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = _local_time_zone()

STATIC_URL = "/static/"
STATIC_ROOT = None  # served from the package by WhiteNoise, no collectstatic step
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "/login/"
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
CSRF_FAILURE_VIEW = "courriel.panel.views.errors.csrf_failure"
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_NAME = "courriel_session"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_AGE = 60 * 60 * 24 * 365  # "remember login permanently"
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Strict"
LANGUAGE_COOKIE_NAME = "courriel_language"
LANGUAGE_COOKIE_SECURE = True
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_AGE = 60 * 60 * 24 * 365
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 180
SECURE_PROXY_SSL_HEADER = None
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "uvicorn.access": {"level": "WARNING"},
        "mail.log": {"level": "WARNING"},  # aiosmtpd logs every command at INFO
    },
}
