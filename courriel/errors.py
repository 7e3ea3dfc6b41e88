"""Errors that reach a person: each carries a message that says what went wrong and
what to do next, and an interface-neutral kind that the CLI, panel, API and mail
plane translate into their own form (exit code, form error, HTTP status, SMTP reply).
"""

from __future__ import annotations


class CourrielError(Exception):
    """Base class of every expected failure; never shown as a traceback."""

    exit_code = 1
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class ConfigError(CourrielError):
    exit_code = 78  # EX_CONFIG


class ValidationError(CourrielError):
    """Bad input: a malformed address, size, date, name..."""

    exit_code = 65  # EX_DATAERR


class LimitError(CourrielError):
    """A plan limit would be exceeded."""

    exit_code = 65
    http_status = 409


class ConflictError(CourrielError):
    """The object already exists or something depends on it."""

    exit_code = 65
    http_status = 409


class NotFoundError(CourrielError):
    exit_code = 66  # EX_NOINPUT
    http_status = 404


class PermissionDeniedError(CourrielError):
    exit_code = 77  # EX_NOPERM
    http_status = 403


class ServiceUnavailableError(CourrielError):
    """A resource we depend on (database, disk) is unavailable: retry later."""

    exit_code = 75  # EX_TEMPFAIL
    http_status = 503


class TooManyAttemptsError(CourrielError):
    """Sign-in attempts are throttled: try again later (`retry_after` seconds)."""

    exit_code = 75  # EX_TEMPFAIL
    http_status = 429

    def __init__(self, message: str, *, retry_after: int = 0, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after
