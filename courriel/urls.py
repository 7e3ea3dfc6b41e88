from django.urls import include, path

from courriel.api.routes import api
from courriel.edge.signin_policy import signin_policy
from courriel.metrics.views import metrics

urlpatterns = [
    path("api/v1/", api.urls),
    path("metrics", metrics, name="metrics"),
    path("cluster/v1/", include("courriel.cluster.urls")),
    path("edge/signin-policy", signin_policy, name="edge-signin-policy"),
    path("", include("courriel.autoconfig.urls")),
    path("", include("courriel.panel.urls")),
]
