"""
The app's views at the paths of a hand-made FastAPI service, as README's
"Coming from FastAPI SSE" mounts them: under /api/, and the subscribe path
without a trailing slash, so that clients are not redirected.
"""

from django.urls import include, path

from notifications import views

urlpatterns = [
    path("api/sse/subscribe/<str:event_type>", views.subscribe),
    path("api/sse/", include("notifications.urls")),
]
