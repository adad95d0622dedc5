"""
HTTP endpoints: subscribe to event streams, publish over HTTP.

The views only parse and answer errors; streams.py produces the stream.
"""

import json

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    JsonResponse,
    StreamingHttpResponse,
)
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from . import process
from .access import refusal
from .conf import setting
from .exceptions import BackendUnavailable, InvalidEventType, PayloadError, PublishRefused
from .publishing import apublish
from .streams import event_stream
from .topics import check_registered, check_topic


def _plain(status: int, reason: str, **headers: str) -> HttpResponse:
    return HttpResponse(
        reason + "\n", status=status, content_type="text/plain; charset=utf-8", headers=headers
    )


def serves_event_stream(view):
    """Mark ``view`` as producing a long-lived stream (see notifications.asgi)."""
    view.serves_event_stream = True
    return view


@serves_event_stream
@require_GET
async def subscribe(request: HttpRequest, event_type: str | None = None) -> HttpResponse:
    """
    Stream the events of one topic (from the URL) or several (``?types=a,b``).
    A topic is an event type or the caller's private ``user.<pk>``.
    """
    if event_type is not None:
        requested = [event_type]
    else:
        requested = list(dict.fromkeys(t for t in request.GET.get("types", "").split(",") if t))
        if not requested:
            return _plain(404, "No event type given. Use ?types=a,b.")
    limit = setting("MAX_TYPES_PER_STREAM")
    if len(requested) > limit:
        return _plain(400, f"Too many event types: {len(requested)}, at most {limit} per stream.")
    try:
        topics = [check_topic(name) for name in requested]
    except InvalidEventType as exc:
        return _plain(404, str(exc))
    for topic in topics:
        refused = await refusal(request, topic)
        if refused is not None:
            return _plain(*refused)
    last_event_id = request.headers.get("Last-Event-ID") or request.GET.get("lastEventId")
    response = StreamingHttpResponse(
        event_stream(topics, last_event_id),
        content_type="text/event-stream; charset=utf-8",
    )
    response["Cache-Control"] = "no-cache"
    # Tell nginx and similar proxies to pass each event on at once.
    response["X-Accel-Buffering"] = "no"
    if process.stopping:
        response["Connection"] = "close"
    return response


@csrf_exempt  # Authenticated by bearer token, never by cookie.
async def publish(request: HttpRequest, event_type: str) -> HttpResponse:
    """Publish the JSON body as an event; for services that are not Django."""
    token = setting("PUBLISH_TOKEN")
    if not token:
        return _plain(404, "Publishing over HTTP is off: NOTIFICATIONS['PUBLISH_TOKEN'] is not set.")
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return _plain(401, "Send 'Authorization: Bearer <token>'.", **{"WWW-Authenticate": "Bearer"})
    if not constant_time_compare(given.strip(), token):
        return _plain(403, "The bearer token is not valid.")
    try:
        check_registered(event_type)
    except InvalidEventType as exc:
        return _plain(404, str(exc))
    if len(request.body) > setting("MAX_PAYLOAD_BYTES"):
        return _plain(413, f"The body is larger than {setting('MAX_PAYLOAD_BYTES')} bytes.")
    try:
        data = json.loads(request.body)
    except ValueError as exc:
        return _plain(400, f"The body is not valid JSON: {exc}.")
    try:
        event_id = await apublish(event_type, data)
    except PayloadError as exc:
        return _plain(413, str(exc))
    except (PublishRefused, BackendUnavailable) as exc:
        return _plain(503, str(exc), **{"Retry-After": "1"})
    return JsonResponse({"id": event_id}, status=202)
