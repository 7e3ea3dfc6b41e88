"""Address and domain-name syntax: the one place that says what a valid name is.

Domains are stored as lower-case A-labels (IDNA 2008 with UTS #46 mapping) and shown
as U-labels; local parts are lower-cased. Hosted local parts are stricter than what
RFC 5321 allows from others: no '+', because '+' introduces a sub-address tag
(`info+news@monsite.be` reaches `info`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import idna

from courriel.errors import ValidationError
from courriel.i18n import gettext as _

SUBADDRESS_SEPARATOR = "+"
MAX_LOCAL_PART = 64
MAX_DOMAIN = 253

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
# RFC 5321 Dot-string, plus UTF-8 characters (RFC 6531) for other providers' users.
_DOT_STRING_RE = re.compile(rf"^[{_ATEXT}\u0080-\U0010ffff]+(\.[{_ATEXT}\u0080-\U0010ffff]+)*$")
_HOSTED_LOCAL_RE = re.compile(r"^[a-z0-9!#$%&'*/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*/=?^_`{|}~-]+)*$")
_LOGIN_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class EmailAddress:
    local_part: str
    domain: str  # A-label

    def __str__(self) -> str:
        return f"{self.local_part}@{self.domain}"

    @property
    def display(self) -> str:
        return f"{self.local_part}@{to_unicode(self.domain)}"

    def without_tag(self) -> EmailAddress | None:
        """`info+news@d` -> `info@d`; None when there is no tag."""
        base, sep, _tag = self.local_part.partition(SUBADDRESS_SEPARATOR)
        if not sep or not base:
            return None
        return EmailAddress(base, self.domain)


@lru_cache(maxsize=4096)
def normalize_domain(name: str) -> str:
    """Validate a domain name and return its lower-case A-label form (cached: the
    mail plane asks for the same few domains at every message)."""
    text = (name or "").strip().rstrip(".")
    if not text:
        raise ValidationError(_("A domain name is required, e.g. monsite.be."))
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        raise ValidationError(
            _(
                "%(name)s is not a valid domain name: use letters, digits and hyphens, "
                "e.g. monsite.be."
            )
            % {"name": repr(name)}
        ) from None
    labels = ascii_name.split(".")
    if (
        len(ascii_name) > MAX_DOMAIN
        or len(labels) < 2
        or not all(_LABEL_RE.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValidationError(
            _(
                "%(name)s is not a valid domain name: it needs at least two parts "
                "(e.g. monsite.be) made of letters, digits and hyphens."
            )
            % {"name": repr(name)}
        )
    return ascii_name


def normalize_hostname(name: str) -> str:
    """A server host name: like a domain, but a single label ("localhost") is allowed."""
    text = (name or "").strip().rstrip(".").lower()
    labels = text.split(".")
    if not text or len(text) > MAX_DOMAIN or not all(_LABEL_RE.match(label) for label in labels):
        raise ValidationError(
            _("%(name)s is not a valid host name, e.g. maximusconfessor.all2all.org.")
            % {"name": repr(name)}
        )
    return text


def to_unicode(name: str) -> str:
    """The U-label form of a stored A-label domain, for display."""
    if "xn--" not in name:
        return name
    try:
        return idna.decode(name)
    except (idna.IDNAError, UnicodeError):
        return name


def parse_address(text: str) -> EmailAddress:
    """Parse `local@domain` (RFC 5321 Dot-string local part, IDN domain), lower-cased."""
    raw = (text or "").strip()
    if raw.startswith("<") and raw.endswith(">"):
        raw = raw[1:-1].strip()
    local, sep, domain = raw.rpartition("@")
    if not sep or not local or not domain:
        raise ValidationError(
            _("%(text)s is not an e-mail address: expected name@domain.") % {"text": repr(text)}
        )
    if len(local.encode("utf-8")) > MAX_LOCAL_PART or not _DOT_STRING_RE.match(local):
        raise ValidationError(
            _(
                "%(text)s is not a valid e-mail address: the part before @ may hold letters, "
                "digits and . _ - + (no spaces, no leading, trailing or double dot)."
            )
            % {"text": repr(text)}
        )
    try:
        ascii_domain = normalize_domain(domain)
    except ValidationError:
        raise ValidationError(
            _("%(text)s is not a valid e-mail address: %(domain)s is not a valid domain.")
            % {"text": repr(text), "domain": repr(domain)}
        ) from None
    return EmailAddress(local.lower(), ascii_domain)


def normalize_address(text: str) -> str:
    return str(parse_address(text))


def validate_hosted_local_part(local_part: str) -> str:
    """Check a local part that we create on a hosted domain; returns it lower-cased."""
    value = (local_part or "").strip().lower()
    if not value:
        raise ValidationError(_("An address name is required, e.g. info."))
    if len(value) > MAX_LOCAL_PART or not _HOSTED_LOCAL_RE.match(value):
        raise ValidationError(
            _(
                "%(name)s is not a valid address name: use letters, digits and . _ - "
                "(no '+', which is kept for sub-addresses like info+news@)."
            )
            % {"name": repr(local_part)}
        )
    return value


def validate_login(login: str) -> str:
    value = (login or "").strip().lower()
    if not _LOGIN_RE.match(value):
        raise ValidationError(
            _(
                "%(login)s is not a valid login: start with a letter or digit, then letters, "
                "digits, '.', '_' or '-', at most 64 characters."
            )
            % {"login": repr(login)}
        )
    return value


def split_address_list(text: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Addresses one per line or separated by commas/spaces, as pasted into a form."""
    if text is None:
        return []
    items = text if isinstance(text, list | tuple) else re.split(r"[\s,;]+", text)
    return [item.strip() for item in items if item and item.strip()]
