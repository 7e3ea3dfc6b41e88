from django.apps import AppConfig


class ClusterConfig(AppConfig):
    name = "courriel.cluster"
    label = "cluster"
    verbose_name = "Cluster"
