from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("subscribe/", views.subscribe, name="subscribe_many"),
    path("subscribe/<str:event_type>/", views.subscribe, name="subscribe"),
    path("publish/", views.publish_many, name="publish_many"),
    path("publish/<str:event_type>/", views.publish, name="publish"),
    path("metrics/", views.metrics, name="metrics"),
    path("client.mjs", views.client_module, name="client_module"),
]
