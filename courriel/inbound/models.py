"""Per-domain and per-mailbox settings of the incoming checks.

The domain's spam filtering switch is its *Spam filtering* feature (`Domain.features`);
what lives here is what the feature list cannot say: the provider's override of how
DMARC failures of mail *to* a domain are treated, and a mailbox's own spam thresholds.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class DomainFiltering(models.Model):
    FOLLOW = "follow"
    QUARANTINE = "quarantine"
    MONITOR = "monitor"
    DMARC_CHOICES = [
        (FOLLOW, _("follow the sender's published policy")),
        (QUARANTINE, _("never refuse: failures go to the Junk folder")),
        (MONITOR, _("only report the result in the headers")),
    ]

    domain = models.OneToOneField(
        "accounts.Domain", on_delete=models.CASCADE, related_name="filtering"
    )
    dmarc = models.CharField(
        _("DMARC failures"), max_length=16, choices=DMARC_CHOICES, default=FOLLOW
    )
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return f"{self.domain}: dmarc {self.dmarc}"


class MailboxSpam(models.Model):
    """Spam scores (rspamd's) at which this mailbox's mail goes to Junk or is refused;
    None: rspamd's own actions decide."""

    mailbox = models.OneToOneField(
        "accounts.Mailbox", on_delete=models.CASCADE, related_name="spam"
    )
    junk_score = models.FloatField(_("Junk folder from score"), null=True, blank=True)
    reject_score = models.FloatField(_("refuse from score"), null=True, blank=True)
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return f"{self.mailbox}: junk {self.junk_score}, reject {self.reject_score}"
