from django.urls import path

from courriel.cluster import views

urlpatterns = [
    path("ping", views.ping),
    path("download", views.download),
    path("moves/<int:move_id>/tree", views.tree),
    path("moves/<int:move_id>/files", views.files),
    path("moves/<int:move_id>/fence", views.fence),
    path("moves/<int:move_id>/sweep", views.sweep),
    path("moves/<int:move_id>/finish", views.finish),
]
