from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "courriel.accounts"
    label = "accounts"
    verbose_name = "Accounts"
