"""Mailbox passwords: strength rules, generation, and hashes Dovecot can verify.

Hashes are stored as `{ARGON2ID}$argon2id$v=19$m=...,t=...,p=1$salt$hash`, the form
Dovecot's ARGON2ID scheme reads (libsodium needs parallelism 1). Nothing can read a
password back; the old panel's "Show.." became "generate a new one and show it once".
"""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from courriel.config import get_config
from courriel.errors import ValidationError
from courriel.i18n import gettext as _

SCHEME = "{ARGON2ID}"
# A few of the most common passwords; the length and variety rules catch the rest.
_COMMON = {
    "password",
    "password1",
    "password123",
    "123456789",
    "1234567890",
    "qwertyuiop",
    "azertyuiop",
    "motdepasse",
    "wachtwoord",
    "iloveyou",
    "letmein123",
    "welcome123",
    "bienvenue",
    "changeme",
    "administrator",
}


def _hasher() -> PasswordHasher:
    config = get_config().passwords
    return PasswordHasher(
        time_cost=config.argon2_time_cost,
        memory_cost=config.argon2_memory_kib,
        parallelism=1,
        type=Type.ID,
    )


def hash_password(password: str) -> str:
    return SCHEME + _hasher().hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Check a password against a stored hash; False for any unusable hash."""
    if not stored or not password:
        return False
    encoded = stored[len(SCHEME) :] if stored.startswith(SCHEME) else stored
    if not encoded.startswith("$argon2"):
        return False
    try:
        return _hasher().verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    encoded = stored[len(SCHEME) :] if stored.startswith(SCHEME) else stored
    try:
        return _hasher().check_needs_rehash(encoded)
    except InvalidHashError:
        return True


def check_strength(password: str, login: str = "") -> None:
    """Raise ValidationError with advice when a password is too weak."""
    minimum = get_config().passwords.min_length
    if not password:
        raise ValidationError(_("A password is required."), field="password")
    if len(password) < minimum:
        raise ValidationError(
            _(
                "The password is too short: use at least %(minimum)s characters "
                "(a few unrelated words make a good one)."
            )
            % {"minimum": minimum},
            field="password",
        )
    lowered = password.lower()
    if login and (lowered == login.lower() or login.lower() in lowered):
        raise ValidationError(_("The password must not contain the login."), field="password")
    if lowered in _COMMON or len(set(password)) < 5:
        raise ValidationError(
            _("This password is too easy to guess: choose another one."), field="password"
        )
    classes = sum(
        any(test(c) for c in password)
        for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    )
    if classes < 3 and len(password) < 16:
        raise ValidationError(
            _(
                "The password is too simple: mix upper and lower case letters, digits and "
                "symbols, or use a longer phrase of 16 characters or more."
            ),
            field="password",
        )


def generate_password(length: int = 16) -> str:
    """A random password like the manual's `OX2fqt5tf16f5Uc`, with every letter kind."""
    alphabet = string.ascii_letters + string.digits
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and sum(c.isdigit() for c in candidate) >= 2
        ):
            return candidate
