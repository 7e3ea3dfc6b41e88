"""State the mail plane keeps in the database (shared by every hosting server)."""

from __future__ import annotations

from django.db import models

from courriel.accounts.models import Mailbox


class AutoreplySent(models.Model):
    """When a mailbox last auto-replied to a sender ("minimum time between autoreplies")."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    sender = models.CharField(max_length=320)
    last_sent = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "sender"], name="one_autoreply_log")
        ]


class QuotaWarning(models.Model):
    """A quota warning already sent (80 % to the user, 95 % to the user and owner), so
    it goes once; cleared when usage falls back below the level."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="+")
    level = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "level"], name="one_warning_per_level")
        ]
