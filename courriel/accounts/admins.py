"""Provider admin accounts (Django users with staff rights)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from courriel.accounts import passwords
from courriel.accounts.addresses import validate_login
from courriel.accounts.permissions import Actor
from courriel.accounts.services.mailboxes import login_taken
from courriel.audit.log import record
from courriel.errors import ConflictError, NotFoundError


@transaction.atomic
def create_admin(username: str, password: str | None) -> tuple[User, str | None]:
    name = validate_login(username)
    if login_taken(name):
        raise ConflictError(f"The login {name!r} is already taken.")
    generated = None
    if password is None:
        password = generated = passwords.generate_password(20, login=name)
    passwords.check_strength(password, name)
    user = User.objects.create_superuser(username=name, email="", password=password)
    record(Actor.cli(), "admin.create", name)
    return user, generated


@transaction.atomic
def set_admin_password(username: str, password: str | None) -> str | None:
    user = User.objects.filter(username=username, is_staff=True).first()
    if user is None:
        raise NotFoundError(f"No provider admin named {username!r}.")
    generated = None
    if password is None:
        password = generated = passwords.generate_password(20, login=user.username)
    passwords.check_strength(password, user.username)
    user.set_password(password)
    user.save(update_fields=["password"])
    record(Actor.cli(), "admin.password", user.username)
    return generated
