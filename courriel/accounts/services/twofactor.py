"""Two-factor sign-in (TOTP, RFC 6238) for every role of the panel, its recovery
codes, and the app passwords mail programs use instead of the account password.

- Enrolment is self-service: a QR code (a PNG made here, no outside service) and the
  key to type, confirmed by a first code; then 10 one-time recovery codes, shown once.
- Sign-in asks for a code (or a recovery code) after the password, throttled like the
  password itself; a code is good once (the last time step used is kept).
- Turning it off, or making new recovery codes, asks for the current password; the
  provider (or the domain's owner, for a mailbox) can reset it for someone who lost
  their phone.
- With two-factor sign-in on, IMAP, POP3 and SMTP take only app passwords: named,
  revocable, shown once, hashed with Argon2id like account passwords.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from courriel.accounts import passwords
from courriel.accounts.models import AppPassword, Domain, Mailbox, RecoveryCode, TwoFactor
from courriel.accounts.permissions import (
    Actor,
    require_domain_manager,
    require_mailbox_change,
    require_provider,
)
from courriel.accounts.signin import Proof, prove
from courriel.audit.log import record
from courriel.config import get_config
from courriel.errors import NotFoundError, PermissionDeniedError, ValidationError
from courriel.i18n import gettext as _

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    Holder = Mailbox | User

RECOVERY_CODES = 10
MAX_APP_PASSWORDS = 20
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


# --- the secret, kept encrypted -----------------------------------------------------------


def _fernet() -> object:
    from cryptography.fernet import Fernet
    from django.conf import settings

    key = hashlib.sha256(("courriel.totp:" + settings.SECRET_KEY).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()  # type: ignore[attr-defined,no-any-return]


def _open(sealed: str) -> str:
    return _fernet().decrypt(sealed.encode()).decode()  # type: ignore[attr-defined,no-any-return]


def _totp(two_factor: TwoFactor) -> object:
    import pyotp

    return pyotp.TOTP(_open(two_factor.secret))


# --- who ------------------------------------------------------------------------------------


def _holder_filter(holder: Holder) -> dict[str, object]:
    return {"mailbox": holder} if isinstance(holder, Mailbox) else {"user": holder}


def _login(holder: Holder) -> str:
    return holder.login if isinstance(holder, Mailbox) else holder.username


def enabled(holder: Holder) -> TwoFactor | None:
    """The holder's confirmed two-factor sign-in, if it is on."""
    return TwoFactor.objects.filter(confirmed_at__isnull=False, **_holder_filter(holder)).first()


def required(holder: Holder) -> bool:
    """Whether the provider requires two-factor sign-in of this person."""
    if not isinstance(holder, Mailbox):
        return bool(get_config().auth.require_2fa_for_admins)
    return Domain.objects.filter(owner=holder, parent__isnull=True, require_2fa=True).exists()


def _require_self(actor: Actor, holder: Holder) -> None:
    if not actor.owns(holder):
        raise PermissionDeniedError(
            _("Only the person who signs in with this account can set up its two-factor sign-in.")
        )


# --- enrolment ------------------------------------------------------------------------------


@dataclass
class Enrolment:
    key: str  # the secret, grouped for typing into an app
    uri: str  # otpauth:// for the QR code
    qr_png: str  # data: URI of the QR code, made here


def _enrolment(holder: Holder, secret: str) -> Enrolment:
    import pyotp
    import segno

    issuer = f"Courriel {get_config().hostname}"
    uri = pyotp.TOTP(secret).provisioning_uri(name=_login(holder), issuer_name=issuer)
    qr = segno.make(uri, error="m").png_data_uri(scale=5, border=2)
    key = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return Enrolment(key, uri, qr)


def begin(actor: Actor, holder: Holder) -> Enrolment:
    """A new secret waiting for its first code (replaces an unfinished enrolment)."""
    import pyotp

    _require_self(actor, holder)
    if enabled(holder) is not None:
        raise ValidationError(_("Two-factor sign-in is already on."))
    secret = pyotp.random_base32()
    TwoFactor.objects.filter(confirmed_at__isnull=True, **_holder_filter(holder)).delete()
    TwoFactor.objects.create(secret=_seal(secret), **_holder_filter(holder))
    return _enrolment(holder, secret)


def pending_enrolment(actor: Actor, holder: Holder) -> Enrolment | None:
    """The enrolment begun and not confirmed yet (to show its QR code again)."""
    _require_self(actor, holder)
    found = TwoFactor.objects.filter(confirmed_at__isnull=True, **_holder_filter(holder)).first()
    return None if found is None else _enrolment(holder, _open(found.secret))


def _new_recovery_codes(two_factor: TwoFactor) -> list[str]:
    two_factor.recovery_codes.all().delete()
    codes = []
    for _n in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_BASE32) for _c in range(16))
        code = "-".join(raw[i : i + 4] for i in range(0, 16, 4))
        codes.append(code)
        RecoveryCode.objects.create(two_factor=two_factor, code_hash=_code_hash(code))
    return codes


def _code_hash(code: str) -> str:
    normal = code.replace("-", "").replace(" ", "").lower()
    return hashlib.sha256(normal.encode()).hexdigest()


def _step_of(code: str, totp: object) -> int | None:
    """The time step a six-digit code belongs to (now, or one step either side for a
    clock a little off), or None."""
    import time

    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    now = int(time.time())
    for offset in (0, -30, 30):
        moment = now + offset
        if secrets.compare_digest(totp.at(moment), code):  # type: ignore[attr-defined]
            return moment // 30
    return None


@transaction.atomic
def confirm(actor: Actor, holder: Holder, code: str) -> list[str]:
    """Check the first code and turn two-factor sign-in on; returns the recovery codes,
    to be shown once."""
    _require_self(actor, holder)
    two_factor = (
        TwoFactor.objects.select_for_update()
        .filter(confirmed_at__isnull=True, **_holder_filter(holder))
        .first()
    )
    if two_factor is None:
        raise ValidationError(_("Start again: scan the QR code first."), field="code")
    step = _step_of(code, _totp(two_factor))
    if step is None:
        raise ValidationError(
            _("This code is not right: type the six digits the app shows now."), field="code"
        )
    two_factor.confirmed_at, two_factor.last_step = timezone.now(), step
    two_factor.save(update_fields=["confirmed_at", "last_step"])
    codes = _new_recovery_codes(two_factor)
    record(actor, "two_factor.on", _login(holder), domain=_domain_of(holder))
    return codes


def _domain_of(holder: Holder) -> str:
    return holder.domain.name if isinstance(holder, Mailbox) else ""


# --- signing in -------------------------------------------------------------------------


def check_code(holder: Holder, code: str) -> bool:
    """A six-digit code not used before, or an unused recovery code (then used up)."""
    with transaction.atomic():
        two_factor = (
            TwoFactor.objects.select_for_update()
            .filter(confirmed_at__isnull=False, **_holder_filter(holder))
            .first()
        )
        if two_factor is None:
            return False
        step = _step_of(code, _totp(two_factor))
        if step is not None:
            if step <= two_factor.last_step:
                return False  # already used: a code is good once
            two_factor.last_step = step
            two_factor.save(update_fields=["last_step"])
            return True
        spare = two_factor.recovery_codes.filter(
            code_hash=_code_hash(code), used_at__isnull=True
        ).first()
        if spare is None:
            return False
        spare.used_at = timezone.now()
        spare.save(update_fields=["used_at"])
    record(
        Actor.system("sign-in"),
        "two_factor.recovery_code_used",
        _login(holder),
        domain=_domain_of(holder),
    )
    return True


def recovery_codes_left(holder: Holder) -> int:
    return RecoveryCode.objects.filter(
        two_factor__confirmed_at__isnull=False, used_at__isnull=True, **_prefixed(holder)
    ).count()


def _prefixed(holder: Holder) -> dict[str, object]:
    return {f"two_factor__{key}": value for key, value in _holder_filter(holder).items()}


# --- turning off, new recovery codes --------------------------------------------------


def new_recovery_codes(actor: Actor, holder: Holder, proof: Proof | None) -> list[str]:
    _require_self(actor, holder)
    prove(actor, holder, proof)
    two_factor = enabled(holder)
    if two_factor is None:
        raise ValidationError(_("Two-factor sign-in is off."))
    with transaction.atomic():
        codes = _new_recovery_codes(two_factor)
        record(actor, "two_factor.recovery_codes", _login(holder), domain=_domain_of(holder))
    return codes


def disable(actor: Actor, holder: Holder, proof: Proof | None) -> None:
    """The person turns it off, with the current password (a stolen session must not
    be able to)."""
    _require_self(actor, holder)
    prove(actor, holder, proof)
    if required(holder):
        raise PermissionDeniedError(
            _("Your provider requires two-factor sign-in: it cannot be turned off.")
        )
    _remove(actor, holder)


def reset(actor: Actor, holder: Holder) -> None:
    """For someone who lost their phone and their recovery codes: the provider, or the
    domain's owner for one of its mailboxes, turns it off (they sign in with the
    password alone, and turn it on again)."""
    if isinstance(holder, Mailbox):
        require_domain_manager(actor, holder.domain)
        if actor.owns(holder):
            raise PermissionDeniedError(_("Turn it off on your Security page."))
    else:
        require_provider(actor, _("reset a provider admin's two-factor sign-in"))
    _remove(actor, holder)


@transaction.atomic
def _remove(actor: Actor, holder: Holder) -> None:
    deleted, _by_model = TwoFactor.objects.filter(**_holder_filter(holder)).delete()
    if deleted:
        record(actor, "two_factor.off", _login(holder), domain=_domain_of(holder))


# --- app passwords ----------------------------------------------------------------------


@dataclass
class CreatedAppPassword:
    app_password: AppPassword
    secret: str  # shown once


def _normal(secret: str) -> str:
    return "".join(secret.split()).replace("-", "").lower()


def _canonical(raw: str) -> str:
    """The form an app password is shown in and hashed in ("abcde-fghij-..."): typed
    exactly so, Dovecot in edge mode checks it against the same hash."""
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))


def app_passwords_of(actor: Actor, mailbox: Mailbox) -> list[AppPassword]:
    require_mailbox_change(actor, mailbox, {"password"})
    return list(mailbox.app_passwords.all())


def create_app_password(
    actor: Actor, mailbox: Mailbox, name: str, proof: Proof | None
) -> CreatedAppPassword:
    """A new app password for one mail program, shown once: made by the mailbox's own
    user with the current password, or by whoever may set the mailbox's password (its
    domain's owner, the provider) for a device they set up."""
    require_mailbox_change(actor, mailbox, {"password"})
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationError(
            _("Give the app password a name of 1 to 100 characters (the program or device)."),
            field="name",
        )
    prove(actor, mailbox, proof)
    if mailbox.app_passwords.count() >= MAX_APP_PASSWORDS:
        raise ValidationError(
            _("At most %(count)s app passwords: revoke one you no longer use.")
            % {"count": MAX_APP_PASSWORDS},
            field="name",
        )
    taken = set(mailbox.app_passwords.values_list("prefix", flat=True))
    raw = ""
    while not raw or raw[:4] in taken:  # one candidate per prefix: one hash check
        raw = "".join(secrets.choice(_BASE32) for _c in range(20))
    secret = _canonical(raw)
    with transaction.atomic():
        made = AppPassword.objects.create(
            mailbox=mailbox,
            name=name,
            prefix=raw[:4],
            password_hash=passwords.hash_password(secret),
        )
        record(actor, "app_password.create", f"{mailbox.login}: {name}", domain=_domain_of(mailbox))
    return CreatedAppPassword(made, secret)


@transaction.atomic
def revoke_app_password(actor: Actor, mailbox: Mailbox, app_password_id: int) -> AppPassword:
    """The mailbox's user, its domain's owner or the provider revokes one."""
    require_mailbox_change(actor, mailbox, {"password"})
    found = mailbox.app_passwords.filter(pk=app_password_id).first()
    if found is None:
        raise NotFoundError(_("No app password %(id)s.") % {"id": app_password_id})
    record(
        actor, "app_password.revoke", f"{mailbox.login}: {found.name}", domain=_domain_of(mailbox)
    )
    found.delete()
    return found


def app_password_candidates(mailbox: Mailbox, password: str) -> list[AppPassword]:
    """The mailbox's app passwords that `password` could be (by their first characters);
    the caller checks the hash."""
    normal = _normal(password)
    if len(normal) != 20 or any(c not in _BASE32 for c in normal):
        return []
    return list(mailbox.app_passwords.filter(prefix=normal[:4]))


def app_password_matches(app_password: AppPassword, password: str) -> bool:
    if not passwords.verify_password(app_password.password_hash, _canonical(_normal(password))):
        return False
    now = timezone.now()
    if app_password.last_used_at is None or (now - app_password.last_used_at).total_seconds() > 60:
        AppPassword.objects.filter(pk=app_password.pk).update(last_used_at=now)
    return True
