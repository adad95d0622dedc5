"""The demo's URLs plus a count of open streams, for tests only (never in project.urls)."""

import asyncio

from django.http import JsonResponse
from django.urls import path

from notifications.hub import existing_hub
from project.urls import urlpatterns as project_urlpatterns


async def open_streams(request):
    hub = existing_hub(asyncio.get_running_loop())
    return JsonResponse({"streams": hub.count if hub else 0})


urlpatterns = [path("test-only/streams/", open_streams), *project_urlpatterns]
