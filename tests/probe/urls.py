from django.urls import include, path

from notifications import tasks

from . import views

urlpatterns = [
    path("probe/slow/", views.slow),
    path("probe/stubborn/", views.stubborn_stream),
    path("probe/download/", views.endless_download),
    path("probe/stuck-thread/", views.start_stuck_thread),
    # The demo's URLs, minus its task pages where django.tasks is missing.
    path("", include("project.urls" if tasks.available() else "tests.core_urls")),
]
