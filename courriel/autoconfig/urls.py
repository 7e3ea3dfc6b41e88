from django.urls import path

from courriel.autoconfig import views

urlpatterns = [
    path(".well-known/autoconfig/mail/config-v1.1.xml", views.thunderbird, name="autoconfig"),
    path("mail/config-v1.1.xml", views.thunderbird, name="autoconfig-host"),
    path("autodiscover/autodiscover.xml", views.autodiscover, name="autodiscover"),
    path("Autodiscover/Autodiscover.xml", views.autodiscover),
]
