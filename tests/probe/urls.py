from django.urls import include, path

from . import views

urlpatterns = [
    path("probe/slow/", views.slow),
    path("probe/stubborn/", views.stubborn_stream),
    path("probe/download/", views.endless_download),
    path("probe/stuck-thread/", views.start_stuck_thread),
    path("", include("project.urls")),
]
