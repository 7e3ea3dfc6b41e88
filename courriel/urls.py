from django.urls import include, path

from courriel.api.routes import api
from courriel.metrics.views import metrics

urlpatterns = [
    path("api/v1/", api.urls),
    path("metrics", metrics, name="metrics"),
    path("cluster/v1/", include("courriel.cluster.urls")),
    path("", include("courriel.autoconfig.urls")),
    path("", include("courriel.panel.urls")),
]
