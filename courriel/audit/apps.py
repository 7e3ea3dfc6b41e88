from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "courriel.audit"
    label = "audit"
    verbose_name = "Audit log"
