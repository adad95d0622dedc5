from django.urls import include, path

from . import views

urlpatterns = [
    path("probe/slow/", views.slow),
    path("probe/stubborn/", views.stubborn_stream),
    path("", include("project.urls")),
]
