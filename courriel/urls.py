from django.urls import include, path

urlpatterns = [
    path("", include("courriel.panel.urls")),
]
