"""Mailboxes (chapter 6), their additional addresses (7), forwarding (8), automatic
replies (9) and passwords (11)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.db.models.functions import Length
from django.utils import timezone

from courriel.accounts import passwords
from courriel.accounts.addresses import (
    parse_address,
    to_unicode,
    validate_hosted_local_part,
    validate_login,
)
from courriel.accounts.models import Address, Domain, DomainAlias, Mailbox
from courriel.accounts.permissions import (
    SELF_SERVICE_FIELDS,
    Actor,
    require_domain_manager,
    require_mailbox_change,
    visible_mailboxes,
)
from courriel.accounts.services import caps, limits
from courriel.accounts.signin import Proof, prove
from courriel.audit.log import record
from courriel.cluster.chores import plan_quota, plan_retirements, retiring
from courriel.cluster.placement import held_elsewhere
from courriel.config import get_config
from courriel.errors import ConflictError, ValidationError
from courriel.i18n import format_day
from courriel.i18n import gettext as _
from courriel.mailstore.layout import create_maildir, relative_maildir, retire
from courriel.mailstore.quota import set_limit

MAX_FORWARDS = 50
# One automatic reply per sender per day unless the owner chooses otherwise ("No
# minimum" was the default, the manual's nightmare; RFC 3834 asks for a sensible one).
DEFAULT_AUTOREPLY_INTERVAL = 24 * 3600
AUTOREPLY_FIELDS = {
    "autoreply_enabled",
    "autoreply_message",
    "autoreply_interval",
    "autoreply_start",
    "autoreply_end",
}


class _Unset(Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET


@dataclass
class CreatedMailbox:
    mailbox: Mailbox
    password: str | None  # the generated password, shown once
    account_mail_to: str | None = None  # where the account e-mail goes, if anywhere


# --- reading ------------------------------------------------------------------------------


def primary_address(mailbox: Mailbox) -> Address | None:
    for address in mailbox.addresses.all():
        if address.kind == Address.PRIMARY:
            return address
    return None


def primary_email(mailbox: Mailbox) -> str:
    address = primary_address(mailbox)
    if address is None:
        return ""
    return f"{address.local_part}@{to_unicode(mailbox.domain.name)}"


def additional_emails(mailbox: Mailbox) -> list[str]:
    return sorted(
        f"{a.local_part}@{to_unicode(a.domain.name)}"
        for a in mailbox.addresses.all()
        if a.kind == Address.ADDITIONAL
    )


def mailboxes_of(actor: Actor, domain: Domain) -> QuerySet[Mailbox]:
    require_domain_manager(actor, domain)
    return (
        visible_mailboxes(actor)
        .filter(domain=domain)
        .prefetch_related("addresses__domain")
        .order_by("login")
    )


def suggest_login(domain: Domain) -> str:
    """The manual's naming convention: domain prefix + 0001, 0002... (the first free
    number, so a deleted user's number comes back).

    Usually every login starting with the prefix (the owner's, the prefix itself,
    aside) is numbered and nothing is free below the highest: then two indexed queries
    answer (how many, which is the highest) instead of reading ten thousand logins.
    """
    prefix = domain.prefix
    pattern = re.compile(rf"^{re.escape(prefix)}(\d{{4,}})$")
    others = Mailbox.objects.filter(login__startswith=prefix).exclude(login=prefix)
    count = others.count()
    highest = list(
        others.annotate(size=Length("login"))
        .order_by("-size", "-login")
        .values_list("login", flat=True)[:1]
    )
    top = pattern.match(highest[0]) if highest else None
    if count == 0 or (top and int(top.group(1)) == count):  # 1..count all taken
        return f"{prefix}{count + 1:04d}"
    taken = {
        int(match.group(1))
        for login in others.values_list("login", flat=True)
        if (match := pattern.match(login))
    }
    number = 1
    while number in taken:
        number += 1
    return f"{prefix}{number:04d}"


# --- validation helpers -------------------------------------------------------------------


def _family_domains(domain: Domain) -> dict[str, Domain]:
    top = domain.top
    return {d.name: d for d in Domain.objects.filter(pk=top.pk) | Domain.objects.filter(parent=top)}


def _claim_address(
    domain: Domain,
    text: str,
    *,
    kind: str,
    mailbox: Mailbox,
    family: dict[str, Domain],
    enabled: bool = True,
) -> Address:
    """Register an address for a mailbox: `info` or `info@monsite.be` (any domain of the
    customer's family of virtual servers)."""
    text = text.strip()
    if "@" in text:
        parsed = parse_address(text)
        target = family.get(parsed.domain)
        if target is None:
            alias = DomainAlias.objects.filter(name=parsed.domain).select_related("domain").first()
            if alias and alias.domain.name in family:
                raise ValidationError(
                    _(
                        "%(address)s is in %(alias)s, an alias of %(domain)s: add %(wanted)s "
                        "instead."
                    )
                    % {
                        "address": text,
                        "alias": to_unicode(alias.name),
                        "domain": alias.domain.display_name,
                        "wanted": f"{parsed.local_part}@{alias.domain.display_name}",
                    },
                    field="addresses",
                )
            raise ValidationError(
                _("%(address)s is not in %(domain)s or its sub-servers.")
                % {"address": text, "domain": domain.display_name},
                field="addresses",
            )
        local_part = validate_hosted_local_part(parsed.local_part)
    else:
        target = domain
        local_part = validate_hosted_local_part(text)
    existing = Address.objects.filter(domain=target, local_part=local_part).first()
    if existing is not None:
        address = f"{local_part}@{target.display_name}"
        if existing.mailbox_id:
            message = _("%(address)s is already used by %(login)s.") % {
                "address": address,
                "login": existing.mailbox.login,  # type: ignore[union-attr]
            }
        else:
            message = _("%(address)s is already used by an alias.") % {"address": address}
        raise ConflictError(message, field="addresses")
    return Address.objects.create(
        domain=target, local_part=local_part, kind=kind, mailbox=mailbox, enabled=enabled
    )


def clean_forward_list(
    addresses: Iterable[str], *, within: Domain | None = None, most: int = MAX_FORWARDS
) -> list[str]:
    """Forwarding addresses, checked. `within`: the domain whose customer sets them; an
    address in one of that customer's own domains must exist (a typo there would bounce
    every message), an address of another customer's is taken as it is, like any
    address elsewhere (checking it would tell which addresses that customer has)."""
    values = [text for text in addresses if text and text.strip()]
    if len(values) > most:
        raise ValidationError(
            _("At most %(count)s forwarding addresses.") % {"count": most}, field="forward_to"
        )
    cleaned: list[str] = []
    for text in values:
        address = str(parse_address(text))
        if address not in cleaned:
            cleaned.append(address)
    _check_hosted_targets(cleaned, within)
    return cleaned


def _check_hosted_targets(addresses: list[str], within: Domain | None) -> None:
    from courriel.accounts.resolution import hosted_domain, resolve

    for address in addresses:
        domain = hosted_domain(address.rsplit("@", 1)[1])
        if domain is None or (within is not None and domain.top.pk != within.top.pk):
            continue
        if resolve(address).status in {"unknown", "invalid"}:
            raise ValidationError(
                _(
                    "%(address)s does not exist here: create that mailbox or alias first, "
                    "or check the spelling."
                )
                % {"address": address},
                field="forward_to",
            )


def _check_not_dropping_mail(deliver_normally: bool, forward_to: list[str]) -> None:
    if not deliver_normally and not forward_to:
        raise ValidationError(
            _(
                "Mail would be thrown away: keep delivering to the mailbox or give at least "
                "one address to forward to."
            ),
            field="forward_to",
        )


def _check_autoreply(
    enabled: bool,
    message: str,
    interval: int | None,
    start: date | None,
    end: date | None,
    today: date | None = None,
) -> None:
    """`today`: when the reply's settings are being changed (an old reply whose end has
    passed does not stop other changes to the mailbox)."""
    if enabled and not message.strip():
        raise ValidationError(
            _("Write the automatic reply message before turning it on."),
            field="autoreply_message",
        )
    caps.autoreply(message)
    if interval is not None and interval < 0:
        raise ValidationError(_("The minimum time between replies cannot be negative."))
    if start and end and end < start:
        raise ValidationError(
            _("The automatic reply end date is before its start date."), field="autoreply_end"
        )
    if enabled and end and today and end < today:
        raise ValidationError(
            _(
                "The end date %(date)s is already past: the automatic reply would never be "
                "sent. Choose a later end date, or turn the reply off."
            )
            % {"date": format_day(end)},
            field="autoreply_end",
        )


def login_taken(login: str) -> bool:
    """Mailbox logins and provider admin usernames share one name space (one login form)."""
    from django.contrib.auth.models import User

    return (
        Mailbox.objects.filter(login=login).exists()
        or User.objects.filter(username__iexact=login).exists()
    )


def _ensure_login_free(actor: Actor, login: str, field: str = "login") -> None:
    """Logins are one name space for every customer: a customer is only told that a
    login is not available, never that another customer has it."""
    server = retiring(login)
    if server is not None and actor.is_provider:
        raise ConflictError(
            _(
                "The mailbox %(login)s was deleted a moment ago and %(server)s is still "
                "removing its mail; try again in a minute."
            )
            % {"login": repr(login), "server": server},
            field=field,
        )
    if login_taken(login) or server is not None:
        if actor.is_provider:
            message = _("The login %(login)s is already taken.")
        else:
            message = _("The login %(login)s is not available.")
        raise ConflictError(message % {"login": repr(login)}, field=field)


def _maildir_on_commit(mailbox: Mailbox) -> None:
    if held_elsewhere(mailbox):  # made by the hosting server that holds it
        return
    path = mailbox.maildir_path(get_config().mail_root)
    quota = mailbox.quota

    def create() -> None:
        create_maildir(path)
        set_limit(path, quota)

    transaction.on_commit(create)


def _quota_on_commit(mailbox: Mailbox) -> None:
    """The Maildir's `maildirsize` states the new limit too (Dovecot reads it), on the
    hosting server that holds it."""
    if held_elsewhere(mailbox):
        plan_quota(mailbox)
        return
    path = mailbox.maildir_path(get_config().mail_root)
    quota = mailbox.quota
    transaction.on_commit(lambda: set_limit(path, quota))


def retire_maildirs_on_commit(mailboxes: list[Mailbox]) -> None:
    """Deleted mailboxes' Maildirs go to `<data>/deleted` once the deletion is committed,
    on the hosting server that holds each."""
    config = get_config()
    plan_retirements([m for m in mailboxes if held_elsewhere(m)])
    paths = [m.maildir_path(config.mail_root) for m in mailboxes if not held_elsewhere(m)]

    def move() -> None:
        for path in paths:
            retire(path, config.data_dir / "deleted")

    transaction.on_commit(move)


# --- creating -----------------------------------------------------------------------------


def create_owner_mailbox(
    domain: Domain, *, login: str, real_name: str, password: str | None
) -> CreatedMailbox:
    """The owner's own mailbox, made with a new customer domain (no plan check: it does
    not count against the mailbox limit)."""
    login = validate_login(login)
    _ensure_login_free(Actor.system(), login, "owner_login")
    real_name = caps.name(real_name[: caps.NAME], "real_name")
    generated = None
    context = {"login": login, "domain": domain.name, "real_name": real_name}
    if password is None:
        password = generated = passwords.generate_password(**context)
    else:
        passwords.check_strength(password, **context)
    mailbox = Mailbox.objects.create(
        domain=domain,
        login=login,
        real_name=real_name,
        password_hash=passwords.hash_password(password),
        password_changed_at=timezone.now(),
        quota=None,
        autoreply_interval=DEFAULT_AUTOREPLY_INTERVAL,
        maildir=relative_maildir(domain.name, login),
    )
    Address.objects.create(domain=domain, local_part=login, kind=Address.PRIMARY, mailbox=mailbox)
    _maildir_on_commit(mailbox)
    return CreatedMailbox(mailbox, generated)


@transaction.atomic
def create_mailbox(
    actor: Actor,
    domain: Domain,
    *,
    login: str | None = None,
    real_name: str = "",
    password: str | None = None,
    generate_password: bool = False,
    quota: int | _Unset | None = UNSET,
    addresses: Iterable[str] = (),
    primary_local_part: str | None = None,
    primary_enabled: bool = True,
    disabled: bool = False,
    deliver_normally: bool = True,
    forward_to: Iterable[str] = (),
    send_account_mail_to: str | None = None,
) -> CreatedMailbox:
    """Add a mailbox. `send_account_mail_to`: None (don't send), "mailbox" (the new
    mailbox itself) or an address: where its settings are e-mailed."""
    require_domain_manager(actor, domain)
    real_name = caps.name(real_name, "real_name")
    addresses = [text for text in addresses if text.strip()]
    caps.additional_addresses(addresses)
    limits.lock_family(domain)
    limits.check_can_add_mailboxes(domain)
    login = validate_login(login) if login else suggest_login(domain)
    _ensure_login_free(actor, login)
    local_part = validate_hosted_local_part(primary_local_part or login)
    generated = None
    if password and generate_password:
        raise ValidationError(_("Give a password or ask for a generated one, not both."))
    context = {"login": login, "domain": domain.name, "real_name": real_name}
    if generate_password:
        password = generated = passwords.generate_password(**context)
    elif password is None:
        raise ValidationError(_("A password is required (or generate one)."), field="password")
    passwords.check_strength(password, **context)
    if quota is UNSET:
        quota = domain.top.effective_plan.default_mailbox_quota
    limits.check_mailbox_quota(domain, quota)
    forwards = clean_forward_list(forward_to, within=domain)
    _check_not_dropping_mail(deliver_normally, forwards)

    mailbox = Mailbox.objects.create(
        domain=domain,
        login=login,
        real_name=real_name,
        password_hash=passwords.hash_password(password),
        password_changed_at=timezone.now(),
        login_disabled=disabled,
        quota=quota,
        deliver_normally=deliver_normally,
        forward_to=forwards,
        autoreply_interval=DEFAULT_AUTOREPLY_INTERVAL,
        maildir=relative_maildir(domain.name, login),
    )
    family = _family_domains(domain)
    _claim_address(
        domain,
        local_part,
        kind=Address.PRIMARY,
        mailbox=mailbox,
        family=family,
        enabled=primary_enabled,
    )
    for text in addresses:
        _claim_address(domain, text, kind=Address.ADDITIONAL, mailbox=mailbox, family=family)
    _maildir_on_commit(mailbox)
    target = None
    if send_account_mail_to:
        target = account_mail_target(mailbox, send_account_mail_to)
        transaction.on_commit(lambda: _queue_account_mail(mailbox, target, generated))
    record(
        actor,
        "mailbox.create",
        login,
        domain=domain.name,
        real_name=mailbox.real_name,
        quota=quota,
        addresses=[a.email for a in mailbox.addresses.all()],
    )
    return CreatedMailbox(mailbox, generated, target)


def account_mail_target(mailbox: Mailbox, choice: str) -> str:
    """Where "Send account e-mail to" goes: `mailbox` means the mailbox's own address."""
    if choice.strip().lower() == "mailbox":
        return primary_email(mailbox) or f"{mailbox.login}@{mailbox.domain.name}"
    try:
        return str(parse_address(choice))
    except ValidationError as error:
        raise ValidationError(error.message, field="send_account_mail_to") from None


def _queue_account_mail(mailbox: Mailbox, to: str, password: str | None) -> None:
    from courriel.delivery.notices import send_account_mail as queue_account_mail

    queue_account_mail(mailbox, to, password)


def send_account_mail(actor: Actor, mailbox: Mailbox, to: str) -> str:
    """Edit Mailbox's "Send updated account email to": the mailbox's settings, mailed
    now by whoever manages its domain. The password is never in it: only its hash is
    stored. Returns the address it went to."""
    require_domain_manager(actor, mailbox.domain)
    target = account_mail_target(mailbox, to)
    _queue_account_mail(mailbox, target, None)
    record(actor, "mailbox.send_account_mail", mailbox.login, domain=mailbox.domain.name, to=target)
    return target


# --- changing -----------------------------------------------------------------------------

# Everything a mailbox user may change themselves, plus what only the owner may.
MODIFIABLE = SELF_SERVICE_FIELDS | {
    "login",
    "primary_local_part",
    "login_disabled",
    "quota",
    "primary_enabled",
    "addresses",
}


def modify_mailbox(
    actor: Actor, mailbox: Mailbox, *, proof: Proof | None = None, **changes: Any
) -> Mailbox:
    """Change any of MODIFIABLE at once; every value is checked before anything is saved.
    A new password ends the mailbox's other panel sessions and revokes its API tokens
    (how many: `tokens_revoked` of the mailbox returned); a person changing their own
    password proves it with the current one (`proof`)."""
    unknown = set(changes) - MODIFIABLE
    if unknown:
        raise ValidationError(
            _("Cannot change %(fields)s of a mailbox.") % {"fields": ", ".join(sorted(unknown))}
        )
    require_mailbox_change(actor, mailbox, set(changes))
    # Sizes first: a huge value is refused before any lock is taken.
    if "addresses" in changes:
        changes["addresses"] = [text for text in changes["addresses"] or [] if text.strip()]
        caps.additional_addresses(changes["addresses"])
    if "real_name" in changes:
        changes["real_name"] = caps.name(str(changes["real_name"] or ""), "real_name")
    if changes.get("autoreply_message"):
        caps.autoreply(changes["autoreply_message"])
    if changes.get("password"):
        # Before the transaction: a wrong current password must stay counted.
        prove(actor, mailbox, proof)
    with transaction.atomic():
        return _modify(actor, mailbox, changes)


def _modify(actor: Actor, mailbox: Mailbox, changes: dict[str, Any]) -> Mailbox:
    mailbox = Mailbox.objects.select_for_update().select_related("domain").get(pk=mailbox.pk)
    domain = mailbox.domain
    is_owner = Domain.objects.filter(owner=mailbox).exists()

    if "login" in changes and changes["login"] != mailbox.login:
        if is_owner:
            raise ValidationError(_("The owner's login is the domain's administration login."))
        new_login = validate_login(changes["login"])
        _ensure_login_free(actor, new_login)
        mailbox.login = new_login
    if "real_name" in changes:
        mailbox.real_name = changes["real_name"]
    if changes.get("password"):
        passwords.check_strength(
            changes["password"],
            mailbox.login,
            domain=domain.name,
            real_name=mailbox.real_name,
        )
        mailbox.password_hash = passwords.hash_password(changes["password"])
        mailbox.password_changed_at = timezone.now()
    if "login_disabled" in changes:
        mailbox.login_disabled = bool(changes["login_disabled"])
    if "quota" in changes:
        limits.check_mailbox_quota(domain, changes["quota"])
        mailbox.quota = changes["quota"]
        _quota_on_commit(mailbox)
    if "language" in changes:
        language = str(changes["language"] or "")
        if language not in {"", "en", "fr", "nl"}:
            raise ValidationError(_("Language must be en, fr or nl."), field="language")
        mailbox.language = language
    if "deliver_normally" in changes:
        mailbox.deliver_normally = bool(changes["deliver_normally"])
    if "forward_to" in changes:
        mailbox.forward_to = clean_forward_list(changes["forward_to"] or [], within=domain)
    _check_not_dropping_mail(mailbox.deliver_normally, mailbox.forward_to)
    for key in ("autoreply_enabled", "autoreply_message", "autoreply_interval"):
        if key in changes:
            setattr(
                mailbox, key, changes[key] if key != "autoreply_message" else changes[key] or ""
            )
    for key in ("autoreply_start", "autoreply_end"):
        if key in changes:
            setattr(mailbox, key, changes[key])
    touched = AUTOREPLY_FIELDS & set(changes)
    _check_autoreply(
        mailbox.autoreply_enabled,
        mailbox.autoreply_message,
        mailbox.autoreply_interval,
        mailbox.autoreply_start,
        mailbox.autoreply_end,
        today=timezone.localdate() if touched else None,
    )
    mailbox.save()

    family = _family_domains(domain)
    primary = Address.objects.filter(mailbox=mailbox, kind=Address.PRIMARY).first()
    if "primary_local_part" in changes:
        local_part = validate_hosted_local_part(changes["primary_local_part"])
        if primary is None or primary.local_part != local_part:
            if primary is not None:
                primary.delete()
            _claim_address(domain, local_part, kind=Address.PRIMARY, mailbox=mailbox, family=family)
            primary = Address.objects.get(mailbox=mailbox, kind=Address.PRIMARY)
    if "primary_enabled" in changes and primary is not None:
        primary.enabled = bool(changes["primary_enabled"])
        primary.save(update_fields=["enabled"])
    if "addresses" in changes:
        _replace_additional(mailbox, changes["addresses"] or [], family)

    # A password change is its own entry ("monsite changed the password of
    # monsite0001"), whoever made it and through whichever page; the mailbox's API
    # tokens go with the old password.
    if changes.get("password"):
        mailbox.tokens_revoked = _revoke_tokens(mailbox)
        record(
            actor,
            "mailbox.password",
            mailbox.login,
            domain=domain.name,
            tokens_revoked=mailbox.tokens_revoked,
        )
    shown = {k: v for k, v in changes.items() if k != "password"}
    if shown:
        record(actor, "mailbox.modify", mailbox.login, domain=domain.name, **_jsonable(shown))
    return mailbox


def _replace_additional(mailbox: Mailbox, wanted: Iterable[str], family: dict[str, Domain]) -> None:
    current = {
        f"{a.local_part}@{a.domain.name}": a
        for a in mailbox.addresses.select_related("domain").filter(kind=Address.ADDITIONAL)
    }
    keep: set[str] = set()
    new: list[str] = []
    for text in wanted:
        text = text.strip()
        if not text:
            continue
        full = text if "@" in text else f"{text}@{mailbox.domain.name}"
        key = str(parse_address(full))
        if key in current:
            keep.add(key)
        elif key not in new:
            new.append(key)
    for key, address in current.items():
        if key not in keep:
            address.delete()
    for key in new:
        _claim_address(mailbox.domain, key, kind=Address.ADDITIONAL, mailbox=mailbox, family=family)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, date) else value
        for key, value in values.items()
    }


def _revoke_tokens(mailbox: Mailbox) -> int:
    """A new password revokes the mailbox's API tokens: whoever stole a session or a
    token does not keep access once the user changes the password."""
    from courriel.api.models import ApiToken

    revoked, _by_model = ApiToken.objects.filter(mailbox=mailbox).delete()
    return revoked


@dataclass
class PasswordChange:
    mailbox: Mailbox
    password: str | None  # the generated password, shown once
    tokens_revoked: int


def change_password(
    actor: Actor, mailbox: Mailbox, password: str | None = None, *, proof: Proof | None = None
) -> PasswordChange:
    """Set `password`, or a generated one (None), shown once. The mailbox's other
    sessions end and its API tokens are revoked."""
    generated = None
    if password is None:
        password = generated = passwords.generate_password(
            login=mailbox.login, domain=mailbox.domain.name, real_name=mailbox.real_name
        )
    changed = modify_mailbox(actor, mailbox, proof=proof, password=password)
    return PasswordChange(changed, generated, changed.tokens_revoked)


def set_password(
    actor: Actor, mailbox: Mailbox, password: str, *, proof: Proof | None = None
) -> Mailbox:
    return change_password(actor, mailbox, password, proof=proof).mailbox


def generate_new_password(actor: Actor, mailbox: Mailbox, *, proof: Proof | None = None) -> str:
    """Replace the password by a random one and return it, to be shown once."""
    return change_password(actor, mailbox, proof=proof).password or ""


def set_forwarding(actor: Actor, mailbox: Mailbox, to: Iterable[str], *, keep: bool) -> Mailbox:
    return modify_mailbox(actor, mailbox, forward_to=list(to), deliver_normally=keep)


def set_autoreply(
    actor: Actor,
    mailbox: Mailbox,
    *,
    enabled: bool,
    message: str | None = None,
    interval: timedelta | _Unset | None = UNSET,
    start: date | _Unset | None = UNSET,
    end: date | _Unset | None = UNSET,
) -> Mailbox:
    changes: dict[str, Any] = {"autoreply_enabled": enabled}
    if message is not None:
        changes["autoreply_message"] = message
    if interval is not UNSET:
        changes["autoreply_interval"] = (
            None if interval is None else int(interval.total_seconds())  # type: ignore[union-attr]
        )
    if start is not UNSET:
        changes["autoreply_start"] = start
    if end is not UNSET:
        changes["autoreply_end"] = end
    return modify_mailbox(actor, mailbox, **changes)


# --- deleting -----------------------------------------------------------------------------


@transaction.atomic
def delete_mailboxes(actor: Actor, mailboxes: Iterable[Mailbox]) -> list[str]:
    """Delete mailboxes ("Delete Selected Users"); the owner's own mailbox stays."""
    targets = list(mailboxes)
    for mailbox in targets:
        require_domain_manager(actor, mailbox.domain)
        if Domain.objects.filter(owner=mailbox).exists():
            raise ConflictError(
                _(
                    "%(login)s is the owner's mailbox of %(domain)s: it goes only with the "
                    "virtual server itself."
                )
                % {"login": mailbox.login, "domain": mailbox.domain.display_name}
            )
    retire_maildirs_on_commit(targets)
    logins = []
    for mailbox in targets:
        record(actor, "mailbox.delete", mailbox.login, domain=mailbox.domain.name)
        logins.append(mailbox.login)
        mailbox.delete()
    return logins


# --- signing in ---------------------------------------------------------------------------


class AuthOutcome(Enum):
    OK = "ok"
    FAILED = "failed"
    DISABLED = "disabled"


@dataclass
class AuthResult:
    outcome: AuthOutcome
    mailbox: Mailbox | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is AuthOutcome.OK


_DUMMY_HASH: str | None = None


def find_login(identifier: str) -> Mailbox | None:
    """A mailbox by login, or by its primary address as an alternative."""
    identifier = (identifier or "").strip().lower()
    if not identifier:
        return None
    mailbox = Mailbox.objects.select_related("domain").filter(login=identifier).first()
    if mailbox is not None or "@" not in identifier:
        return mailbox
    try:
        parsed = parse_address(identifier)
    except ValidationError:
        return None
    address = (
        Address.objects.select_related("mailbox__domain")
        .filter(
            domain__name=parsed.domain,
            local_part=parsed.local_part,
            kind=Address.PRIMARY,
            enabled=True,
        )
        .first()
    )
    return address.mailbox if address else None


def password_matches(mailbox: Mailbox | None, password: str) -> bool:
    """Check a mailbox's password (Argon2, slow on purpose: callers on an event loop run
    it in a thread). No mailbox costs the same time as a wrong password, so timing does
    not reveal which logins exist. A hash made with older costs is renewed."""
    global _DUMMY_HASH
    if mailbox is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = passwords.hash_password(passwords.generate_password())
        passwords.verify_password(_DUMMY_HASH, password)
        return False
    if not passwords.verify_password(mailbox.password_hash, password):
        return False
    if passwords.needs_rehash(mailbox.password_hash):
        Mailbox.objects.filter(pk=mailbox.pk).update(
            password_hash=passwords.hash_password(password)
        )
    return True


def authenticate(identifier: str, password: str) -> AuthResult:
    """Check a login and password, without throttling: every door on the network
    (panel, API, IMAP, POP3, SMTP AUTH) goes through `courriel.accounts.signin`."""
    mailbox = find_login(identifier)
    if not password_matches(mailbox, password):
        return AuthResult(AuthOutcome.FAILED)
    assert mailbox is not None
    if mailbox.login_disabled:
        return AuthResult(AuthOutcome.DISABLED, mailbox)
    return AuthResult(AuthOutcome.OK, mailbox)
