"""API tokens: created in the panel (for oneself) or by `courriel token create` (the
provider, for anyone); a token acts with the permissions of the person it belongs to.

The token is shown once; only its SHA-256 is kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from courriel.accounts.models import Mailbox
from courriel.accounts.permissions import Actor, require_provider
from courriel.accounts.signin import Proof, prove
from courriel.api.models import ApiToken
from courriel.audit.log import record
from courriel.errors import NotFoundError, ValidationError
from courriel.i18n import gettext as _

PREFIX = "crl_"
SHOWN_PREFIX = 10  # characters kept in clear to recognise a token in a list
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass
class CreatedToken:
    token: ApiToken
    secret: str  # shown once


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _holder(
    actor: Actor, admin: str | None, login: str | None
) -> tuple[User | None, Mailbox | None]:
    if admin or login:
        require_provider(actor, _("create API tokens for other people"))
        if admin:
            user = User.objects.filter(username=admin.strip(), is_staff=True).first()
            if user is None:
                raise NotFoundError(_("No provider admin named %(name)s.") % {"name": repr(admin)})
            return user, None
        mailbox = Mailbox.objects.filter(login=(login or "").strip().lower()).first()
        if mailbox is None:
            raise NotFoundError(_("No mailbox with login %(login)s.") % {"login": repr(login)})
        return None, mailbox
    if actor.mailbox_id is not None and actor.role != "provider":
        return None, Mailbox.objects.get(pk=actor.mailbox_id)
    if actor.user_id is not None:
        return User.objects.get(pk=actor.user_id), None
    raise ValidationError(
        _("Say whose token this is: --admin USERNAME or --login MAILBOX_LOGIN."), field="holder"
    )


def create_token(
    actor: Actor,
    name: str,
    *,
    admin: str | None = None,
    login: str | None = None,
    proof: Proof | None = None,
) -> CreatedToken:
    """A new token; a person making one for themselves at the panel proves it with
    their current password (a stolen session must not become lasting access)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationError(
            _("Give the token a name of 1 to 100 characters (what it is for)."), field="name"
        )
    user, mailbox = _holder(actor, admin, login)
    prove(actor, mailbox or user, proof)  # outside the transaction: failures stay counted
    with transaction.atomic():
        return _make(actor, name, user, mailbox)


def _make(actor: Actor, name: str, user: User | None, mailbox: Mailbox | None) -> CreatedToken:
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name,
        key_hash=digest(secret),
        prefix=secret[:SHOWN_PREFIX],
        user=user,
        mailbox=mailbox,
        created_by=actor.name,
    )
    record(
        actor,
        "token.create",
        f"{token.holder}: {name}",
        domain=mailbox.domain.name if mailbox else "",
    )
    return CreatedToken(token, secret)


def tokens_of(actor: Actor, *, everyone: bool = False) -> QuerySet[ApiToken]:
    """The actor's own tokens; the provider may ask for every token."""
    tokens = ApiToken.objects.select_related("user", "mailbox")
    if everyone:
        require_provider(actor, _("list everyone's API tokens"))
        return tokens.all()
    if actor.mailbox_id is not None and actor.role != "provider":
        return tokens.filter(mailbox_id=actor.mailbox_id)
    if actor.user_id is not None:
        return tokens.filter(user_id=actor.user_id)
    return tokens.none()


@transaction.atomic
def revoke_token(actor: Actor, token_id: int) -> ApiToken:
    """Delete a token: one's own, or any token for the provider."""
    scope = tokens_of(actor, everyone=actor.is_provider)
    token = scope.filter(pk=token_id).first()
    if token is None:
        raise NotFoundError(_("No API token %(id)s.") % {"id": token_id})
    record(
        actor,
        "token.revoke",
        f"{token.holder}: {token.name}",
        domain=token.mailbox.domain.name if token.mailbox_id else "",  # type: ignore[union-attr]
    )
    token.delete()
    return token


def authenticate(secret: str) -> Actor | None:
    """The actor a presented token acts as, or None (unknown token, or its holder
    can no longer sign in)."""
    if not secret or not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user", "mailbox__domain")
        .filter(key_hash=digest(secret))
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    if token.user_id:
        user = token.user
        assert user is not None
        if not (user.is_active and (user.is_staff or user.is_superuser)):
            return None
        return Actor("provider", f"api:{user.username}", user_id=user.pk, remote=True)
    mailbox = token.mailbox
    assert mailbox is not None
    if mailbox.login_disabled:
        return None
    return dataclasses.replace(Actor.for_mailbox(mailbox, remote=True), name=f"api:{mailbox.login}")
