from django.urls import path

from . import views, webhooks

urlpatterns = [
    path("", views.home, name="home"),
    path("webhooks/codat", webhooks.receive, name="webhook-codat"),
]
