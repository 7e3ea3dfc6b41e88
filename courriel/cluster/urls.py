from django.urls import path

from courriel.cluster import views

urlpatterns = [
    path("ping", views.ping),
    path("download", views.download),
    path("chores", views.chores),
    path("restore", views.restore),
    path("snapshots", views.snapshots),
    path("moves/<int:move_id>/tree", views.tree),
    path("moves/<int:move_id>/files", views.files),
    path("moves/<int:move_id>/fence", views.fence),
    path("moves/<int:move_id>/sweep", views.sweep),
    path("moves/<int:move_id>/finish", views.finish),
]
