from django.apps import AppConfig


class InboundConfig(AppConfig):
    name = "courriel.inbound"
    label = "inbound"
    verbose_name = "Incoming mail checks"
