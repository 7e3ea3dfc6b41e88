from django.apps import AppConfig


class PanelConfig(AppConfig):
    name = "courriel.panel"
    label = "panel"
    verbose_name = "Panel"
