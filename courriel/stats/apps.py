from django.apps import AppConfig


class StatsConfig(AppConfig):
    name = "courriel.stats"
    label = "stats"
    verbose_name = "Statistics"
