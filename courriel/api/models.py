"""API tokens. Only a hash of each token is stored: a stolen database does not give
access to the API, and nobody can read a token back (it is shown once, at creation)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ApiToken(models.Model):
    name = models.CharField(_("token name"), max_length=100)
    # SHA-256 of the token: tokens are long random strings, so a fast hash is enough
    # (nothing to brute-force), and look-ups stay one indexed query per request.
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16)  # the first characters, to recognise a token
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    mailbox = models.ForeignKey(
        "accounts.Mailbox",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    created_at = models.DateTimeField(_("created on"), auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(user__isnull=False, mailbox__isnull=True)
                    | models.Q(user__isnull=True, mailbox__isnull=False)
                ),
                name="api_token_has_one_holder",
            )
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def holder(self) -> str:
        if self.mailbox_id:
            return self.mailbox.login  # type: ignore[union-attr]
        return self.user.username  # type: ignore[union-attr]
