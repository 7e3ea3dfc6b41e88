from django.apps import AppConfig


class GreylistConfig(AppConfig):
    name = "courriel.greylist"
    label = "greylist"
    verbose_name = "Greylisting"
