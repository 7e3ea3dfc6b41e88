from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "courriel.delivery"
    label = "delivery"
    verbose_name = "Mail delivery"
