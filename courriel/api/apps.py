from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "courriel.api"
    label = "api"
    verbose_name = "REST API"
