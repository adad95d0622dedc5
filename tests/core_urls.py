"""
The URLs of the demo minus its task pages, for Django releases without
django.tasks (5.2): what the version matrix serves there (see
tests/settings.py).
"""

from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("sse/", include("notifications.urls")),
    *staticfiles_urlpatterns(),
]
