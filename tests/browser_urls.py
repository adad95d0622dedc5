"""The demo's URLs plus pages and a stream count for tests only (never in project.urls)."""

import asyncio

from django.http import HttpResponse, JsonResponse
from django.template import RequestContext, Template
from django.urls import path

from notifications.hub import existing_hub
from project.urls import urlpatterns as project_urlpatterns

MEMBERS_ONLY_PAGE = Template(
    "{% load notifications %}<!doctype html><title>Members only</title>"
    '{% notifications_client types="members_only" %}<body></body>'
)


async def open_streams(request):
    hub = existing_hub(asyncio.get_running_loop())
    return JsonResponse({"streams": hub.count if hub else 0})


def members_only(request):
    return HttpResponse(MEMBERS_ONLY_PAGE.render(RequestContext(request)))


urlpatterns = [
    path("test-only/streams/", open_streams),
    path("test-only/members-only/", members_only),
    *project_urlpatterns,
]
