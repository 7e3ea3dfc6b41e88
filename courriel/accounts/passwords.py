"""Mailbox passwords: strength rules, generation, and hashes Dovecot can verify.

Hashes are stored as `{ARGON2ID}$argon2id$v=19$m=...,t=...,p=1$salt$hash`, the form
Dovecot's ARGON2ID scheme reads (libsodium needs parallelism 1). Nothing can read a
password back; the old panel's "Show.." became "generate a new one and show it once".
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from courriel.config import get_config
from courriel.errors import ValidationError
from courriel.i18n import gettext as _

SCHEME = "{ARGON2ID}"
MIN_SCORE = 3  # zxcvbn's "safely unguessable: moderate protection from offline attacks"
MAX_LENGTH = 256
_ESTIMATED = 72  # zxcvbn looks at this many characters (more would only raise the score)
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)


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


@dataclass(frozen=True)
class Strength:
    """How hard a password is to guess: zxcvbn's score (0 to 4) and, when it is too
    weak, why (in the reader's language)."""

    score: int
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def _personal_words(login: str, domain: str, real_name: str) -> list[str]:
    """What a password must not be built from: the login, the domain's labels (not its
    public suffix), the words of the real name; four letters or more."""
    words = [login, domain, *domain.split(".")[:-1], *re.split(r"[\W_]+", real_name)]
    return sorted({w.lower() for w in words if len(w) >= 4})


def _reason(result: dict[str, object]) -> str:
    """The weakest part zxcvbn found, said in a way a person can act on."""
    matches: list[dict[str, object]] = result["sequence"]  # type: ignore[assignment]
    patterns = {str(m["pattern"]) for m in matches}
    if any(m.get("dictionary_name") == "passwords" for m in matches):
        return _("It is too close to a commonly used password.")
    if "repeat" in patterns:
        return _('Repeats like "aaa" or "abcabc" are easy to guess.')
    if "sequence" in patterns:
        return _('Sequences like "abcd" or "6543" are easy to guess.')
    if "spatial" in patterns:
        return _('Keyboard patterns like "qwerty" or "azerty" are easy to guess.')
    if "date" in patterns or "regex" in patterns:
        return _("Dates and years are easy to guess.")
    if "dictionary" in patterns:
        return _("Common words and names alone are easy to guess.")
    return _("It is too short or too simple.")


def assess(password: str, *, login: str = "", domain: str = "", real_name: str = "") -> Strength:
    """The one rule for every new password (CLI, panel, API, and the strength shown
    while typing): long enough, not built from the login, the domain or the real name,
    and estimated by zxcvbn (Dropbox's estimator) at a score of at least 3."""
    from zxcvbn import zxcvbn

    minimum = get_config().passwords.min_length
    if not password:
        return Strength(0, _("A password is required."))
    if len(password) > MAX_LENGTH:
        return Strength(
            0, _("The password is too long (at most %(count)s characters).") % {"count": MAX_LENGTH}
        )
    personal = _personal_words(login, domain, real_name)
    result = zxcvbn(password[:_ESTIMATED], user_inputs=personal)
    score = int(result["score"])
    if len(password) < minimum:
        return Strength(
            min(score, 1),
            _(
                "The password is too short: use at least %(minimum)s characters "
                "(a few unrelated words make a good one)."
            )
            % {"minimum": minimum},
        )
    lowered = password.lower()
    if any(word in text for word in personal for text in (lowered, lowered.translate(_LEET))):
        return Strength(
            min(score, 1),
            _("The password must not be built from the login, the domain name or your name."),
        )
    if score < MIN_SCORE:
        return Strength(
            score,
            _("This password is too easy to guess. %(reason)s Try a few unrelated words.")
            % {"reason": _reason(result)},
        )
    return Strength(score)


def check_strength(
    password: str, login: str = "", *, domain: str = "", real_name: str = ""
) -> None:
    """Raise ValidationError (on the password field) when `assess` finds a problem."""
    strength = assess(password, login=login, domain=domain, real_name=real_name)
    if not strength.ok:
        raise ValidationError(strength.problem, field="password")


def generate_password(
    length: int = 16, *, login: str = "", domain: str = "", real_name: str = ""
) -> str:
    """A random password like the manual's `OX2fqt5tf16f5Uc`, with every letter kind,
    that always passes `assess` for the account it is made for."""
    alphabet = string.ascii_letters + string.digits
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and sum(c.isdigit() for c in candidate) >= 2
            and assess(candidate, login=login, domain=domain, real_name=real_name).ok
        ):
            return candidate
