"""The audit log: who changed what, when, through which interface."""

from __future__ import annotations

from django.db import models


class AuditEntry(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150)
    role = models.CharField(max_length=20)
    action = models.CharField(max_length=60)
    target = models.CharField(max_length=300)
    # Domain the change belongs to (A-label), so an owner can read their own entries.
    domain = models.CharField(max_length=253, blank=True, db_index=True)
    details = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"
