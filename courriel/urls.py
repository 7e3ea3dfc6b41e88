from django.urls import include, path

from courriel.api.routes import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("", include("courriel.autoconfig.urls")),
    path("", include("courriel.panel.urls")),
]
