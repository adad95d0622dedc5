"""
HTTP endpoints: subscribe to event streams, publish over HTTP, metrics,
and the browser client as an ES module for pages of other origins.

The views only parse and answer errors; streams.py produces the stream.
"""

import json
import math
from collections.abc import Callable
from pathlib import Path

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
from .access import authenticated_user, refusal
from .conf import setting
from .cors import with_cors
from .exceptions import BackendUnavailable, InvalidEventType, PayloadError, PublishRefused
from .limits import publish_limiter
from .publishing import apublish, apublish_many
from .streams import event_stream
from .topics import check_registered, check_topic

# The browser client (an ES module), also a static file; served by
# client_module() for pages of ALLOWED_ORIGINS to import.
CLIENT_MODULE = Path(__file__).resolve().parent / "static" / "notifications" / "notifications.mjs"
STAFF = "staff"
TOKEN = "token"
# ?keepalive=event: heartbeats as events, for EventSource pages that watch them.
KEEPALIVE_EVENT = "event"


def _plain(status: int, reason: str, **headers: str) -> HttpResponse:
    return HttpResponse(
        reason + "\n", status=status, content_type="text/plain; charset=utf-8", headers=headers
    )


def _bearer_refusal(request: HttpRequest, token: str) -> HttpResponse | None:
    """Return a 401 or 403 answer unless the request carries ``Authorization: Bearer <token>``."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return _plain(401, "Send 'Authorization: Bearer <token>'.", **{"WWW-Authenticate": "Bearer"})
    if not constant_time_compare(given.strip(), token):
        return _plain(403, "The bearer token is not valid.")
    return None


def serves_event_stream[V: Callable[..., object]](view: V) -> V:
    """
    Mark ``view`` as one that asgi.StreamingASGIHandler serves without a
    per-request thread and with STREAM_MIDDLEWARE: the stream views, and the
    publish views, which need no session and must not queue behind the
    middleware's thread hops of every stream that opens.
    """
    view.serves_event_stream = True
    return view


def _reject_nonstandard_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


@serves_event_stream
@with_cors
@require_GET
async def subscribe(request: HttpRequest, event_type: str | None = None) -> HttpResponse:
    """
    Stream the events of one topic (from the URL) or several (``?types=a,b``).
    A topic is an event type or the caller's private ``user.<pk>``.
    ``?keepalive=event`` sends heartbeats as ``keepalive`` events, not comments.
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
    keepalive = request.GET.get("keepalive")
    if keepalive not in (None, KEEPALIVE_EVENT):
        return _plain(
            400, f"keepalive={keepalive!r} is not valid. Use keepalive=event, or leave it out for comments."
        )
    try:
        topics = [check_topic(name) for name in requested]
    except InvalidEventType as exc:
        return _plain(404, str(exc))
    for topic in topics:
        refused = await refusal(request, topic)
        if refused is not None:
            return _plain(*refused)
    user = await authenticated_user(request)
    # Empty means none, in the header as in the query: the stream starts at its position.
    last_event_id = request.headers.get("Last-Event-ID") or request.GET.get("lastEventId") or None
    response = StreamingHttpResponse(
        event_stream(
            topics,
            last_event_id,
            None if user is None else str(user.pk),
            keepalive_events=keepalive == KEEPALIVE_EVENT,
        ),
        content_type="text/event-stream; charset=utf-8",
    )
    response["Cache-Control"] = "no-cache"
    # Tell nginx and similar proxies to pass each event on at once.
    response["X-Accel-Buffering"] = "no"
    if process.stopping:
        response["Connection"] = "close"
    _forget_parsed(request)
    return response


def _forget_parsed(request: HttpRequest) -> None:
    # The request lives as long as its stream. What Django parsed from it on
    # demand (the query, the headers, the cookies: about 0.6 KB) is parsed
    # again if anything asks, so it need not be kept for hours.
    for name in ("GET", "headers", "COOKIES"):
        request.__dict__.pop(name, None)


def _publisher_refusal(request: HttpRequest) -> HttpResponse | None:
    """Return the answer to a request that may not publish at all, else None."""
    token = setting("PUBLISH_TOKEN")
    if not token:
        return _plain(404, "Publishing over HTTP is off: NOTIFICATIONS['PUBLISH_TOKEN'] is not set.")
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return _bearer_refusal(request, token)


def _rate_refusal(events: int) -> HttpResponse | None:
    """Return a 429 if the token may not publish ``events`` more events now, else None."""
    rate = setting("PUBLISH_RATE")
    if rate is not None:
        wait = publish_limiter.wait_time(
            setting("PUBLISH_TOKEN"), rate, setting("PUBLISH_BURST"), cost=events
        )
        if wait:
            return _plain(
                429,
                f"This token may publish {rate} events a second (NOTIFICATIONS['PUBLISH_RATE']); "
                "retry later.",
                **{"Retry-After": str(math.ceil(wait))},
            )
    return None


def _json_body(request: HttpRequest, limit: int) -> tuple[object, HttpResponse | None]:
    """Return the request's JSON body, or the answer refusing it."""
    declared = request.headers.get("Content-Length", "0")
    # Refuse a large body by its declared length, before reading it.
    if (declared.isdigit() and int(declared) > limit) or len(request.body) > limit:
        return None, _plain(413, f"The body is larger than {limit} bytes.")
    try:
        return json.loads(request.body, parse_constant=_reject_nonstandard_constant), None
    except (ValueError, RecursionError) as exc:
        return None, _plain(400, f"The body is not valid JSON: {exc}.")


async def _published(publishing) -> HttpResponse:
    """Await ``publishing`` and answer 202 with what it returns, or why it refused."""
    try:
        result = await publishing
    except PayloadError as exc:
        return _plain(413, str(exc))
    except InvalidEventType as exc:
        return _plain(400, str(exc))
    except (PublishRefused, BackendUnavailable) as exc:
        return _plain(503, str(exc), **{"Retry-After": "1"})
    return JsonResponse(result, status=202)


@serves_event_stream
@csrf_exempt  # Authenticated by bearer token, never by cookie.
async def publish(request: HttpRequest, event_type: str) -> HttpResponse:
    """Publish the JSON body as an event; for services that are not Django."""
    refused = _publisher_refusal(request) or _rate_refusal(1)
    if refused is not None:
        return refused
    try:
        check_registered(event_type)
    except InvalidEventType as exc:
        return _plain(404, str(exc))
    data, refused = _json_body(request, setting("MAX_PAYLOAD_BYTES"))
    if refused is not None:
        return refused

    async def publishing():
        return {"id": await apublish(event_type, data)}

    return await _published(publishing())


@serves_event_stream
@csrf_exempt  # Authenticated by bearer token, never by cookie.
async def publish_many(request: HttpRequest) -> HttpResponse:
    """
    Publish ``{"events": [{"type": ..., "data": ..., "user": pk}, ...]}`` at
    once (``user`` optional: that user's private topic). All or none: an
    invalid event refuses the whole request before anything is stored.
    """
    refused = _publisher_refusal(request)
    if refused is not None:
        return refused
    burst = setting("PUBLISH_BURST")
    body, refused = _json_body(request, setting("MAX_PAYLOAD_BYTES") * burst)
    if refused is not None:
        return refused
    events = body.get("events") if isinstance(body, dict) else None
    if not (
        isinstance(events, list) and all(isinstance(e, dict) and {"type", "data"} <= e.keys() for e in events)
    ):
        return _plain(400, 'The body must be {"events": [{"type": ..., "data": ..., "user": ...}, ...]}.')
    if len(events) > burst:
        return _plain(
            413, f"{len(events)} events; at most {burst} (NOTIFICATIONS['PUBLISH_BURST']) a request."
        )
    refused = _rate_refusal(len(events))
    if refused is not None:
        return refused

    async def publishing():
        return {"ids": await apublish_many((e["type"], e["data"], e.get("user")) for e in events)}

    return await _published(publishing())


@require_GET
async def metrics(request: HttpRequest) -> HttpResponse:
    """Return this process's metrics for Prometheus; off unless METRICS_ACCESS is set."""
    access = setting("METRICS_ACCESS")
    if access == TOKEN and setting("METRICS_TOKEN"):
        refused = _bearer_refusal(request, setting("METRICS_TOKEN"))
        if refused is not None:
            return refused
    elif access == STAFF:
        user = await authenticated_user(request)
        if user is None:
            return _plain(401, "Log in as a staff user to read metrics.")
        if not user.is_staff:
            return _plain(403, "Only staff users may read metrics.")
    else:
        return _plain(404, "Metrics are off: NOTIFICATIONS['METRICS_ACCESS'] is not set.")
    # Imported here: prometheus-client is an optional dependency (the
    # "metrics" extra), needed only once the endpoint is on (check E011).
    from .metrics import CONTENT_TYPE, exposition

    return HttpResponse(exposition(), content_type=CONTENT_TYPE)


@with_cors
@require_GET
async def client_module(request: HttpRequest) -> HttpResponse:
    """
    Return the browser client as an ES module, with the CORS headers pages of
    NOTIFICATIONS['ALLOWED_ORIGINS'] need to import it (a static file server
    sends none): ``import { connect } from "https://host/sse/client.mjs"``.
    """
    # Read per request (a few tens of KiB): a deploy serves the new client
    # at once, and no-cache makes browsers revalidate rather than keep an old one.
    return HttpResponse(
        CLIENT_MODULE.read_bytes(),
        content_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )
