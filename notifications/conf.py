"""
Settings for the notifications app.

Every option lives in one dict, ``settings.NOTIFICATIONS``. Options are read
at call time, so ``override_settings(NOTIFICATIONS=...)`` works in tests.
"""

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Event types that may be published and subscribed to. More can be added
    # from code with notifications.topics.register().
    "EVENT_TYPES": [],
    # Who may subscribe, per event type: "public", "authenticated" or a
    # permission ("app_label.codename"). Private user topics are owner-only.
    "ACCESS": {},
    # The rule for event types missing from ACCESS.
    "DEFAULT_ACCESS": "public",
    # Seconds between keep-alive comments on an idle stream.
    "HEARTBEAT": 15,
    # Milliseconds a browser waits before reconnecting, sent as "retry:".
    "RETRY_MS": 2000,
    # Events kept per topic (event type or user topic). Streams are read from
    # history, so it bounds how far a stream may fall behind (a reconnect, a
    # process that misses wake-ups) and still catch up without a reset.
    "HISTORY_SIZE": 1000,
    # Dotted path of the EventHistory class and its options. Several
    # processes need one shared history: "notifications.history.database.DatabaseHistory"
    # (the project's database, kept across restarts; option "database"), or
    # "notifications.history.redis.RedisHistory" with {"url": "redis://host:port/db"}
    # (options: see those classes).
    "HISTORY_BACKEND": "notifications.history.memory.InMemoryHistory",
    "HISTORY_OPTIONS": {},
    # Encoded frames, and bytes, a stream may hold unsent before it is closed
    # as too slow; the client reconnects and catches up from history.
    "STREAM_QUEUE_SIZE": 1000,
    "STREAM_QUEUE_BYTES": 1024 * 1024,
    # Seconds between two reads of the history by each serving process when
    # no channel-layer message wakes it up. It bounds how late an event
    # arrives when the layer drops its message (a member over capacity, a
    # Redis restart), or reaches no process (a history shared between
    # processes without a shared layer).
    "POLL_INTERVAL": 1.0,
    # Bytes a stream's connection may hold unsent (its client stopped
    # reading) before the connection is closed; the client catches up from
    # history when it returns. Daphne only; see backpressure.py.
    "MAX_UNSENT_BYTES": 1024 * 1024,
    # Event types one connection may subscribe to.
    "MAX_TYPES_PER_STREAM": 16,
    # Largest JSON payload publish() accepts, in bytes.
    "MAX_PAYLOAD_BYTES": 64 * 1024,
    # Bearer token for POST /sse/publish/<type>/. None turns the endpoint off.
    "PUBLISH_TOKEN": None,
    # Middleware that stream requests run instead of settings.MIDDLEWARE
    # (async-capable only). None: async twins of Django's SessionMiddleware
    # and AuthenticationMiddleware, for those of them settings.MIDDLEWARE has.
    "STREAM_MIDDLEWARE": None,
    # Under Daphne, send an event stream's writes at once when its connection
    # has nothing unsent, instead of Twisted's buffer-then-poll (see
    # servers/daphne.py). False keeps Twisted's own writes.
    "EAGER_WRITES": True,
    # Under Daphne, how many connections the kernel queues for accept() on
    # each endpoint Daphne builds from --bind/--port or --unix-socket.
    # Twisted's default is 50: when thousands of clients reconnect at once
    # (a restart), the rest are dropped and retry a second or more later.
    # None keeps Daphne's. Capped by the kernel's net.core.somaxconn.
    "LISTEN_BACKLOG": 2048,
    # The garbage collector's thresholds (gc.set_threshold()) in a process
    # that serves streams, set when get_asgi_application() builds the
    # application. Python's (700, 10, 10) moves the objects a waiting stream
    # holds from one event to the next into the oldest generation, whose
    # collections walk every open stream (200-500 ms at 5,000 streams); with
    # the middle generation collected ten times less often they die young.
    # None keeps the interpreter's.
    "GC_THRESHOLDS": (700, 100, 10),
    # Alias in CHANNEL_LAYERS that carries events between processes.
    "CHANNEL_LAYER": "default",
    # Seconds a stopping server waits for streams to end before closing
    # whatever is left.
    "DRAIN_TIMEOUT": 5,
    # Open streams one serving process accepts, and one user may hold in a
    # process. None lifts the limit. A stream over a limit is answered with
    # a "limit_exceeded" event and "retry: LIMIT_RETRY_MS", then ends.
    "MAX_STREAMS": 10_000,
    "MAX_STREAMS_PER_USER": 10,
    # Milliseconds a client refused for a limit waits before reconnecting.
    "LIMIT_RETRY_MS": 60_000,
    # Seconds after which a stream ends with a "stream_expired" event so the
    # client reconnects and its access is checked again; streams end between
    # 75 % and 100 % of it so they do not all reconnect at once. None keeps
    # streams open until the client or the server leaves.
    "MAX_STREAM_AGE": 600,
    # Events per second and burst one PUBLISH_TOKEN may send to the HTTP
    # publish endpoint, per process; above it the answer is 429. None lifts it.
    "PUBLISH_RATE": 1000,
    "PUBLISH_BURST": 1000,
    # Origins ("https://app.example.com") whose pages may open streams from
    # another origin; "*" allows any origin, but only without credentials.
    # Empty: cross-origin streams are refused.
    "ALLOWED_ORIGINS": [],
    # Send "Access-Control-Allow-Credentials: true" to allowed origins, so an
    # EventSource opened with withCredentials carries the session cookie.
    "ALLOW_CREDENTIALS": False,
    # Who may read the Prometheus metrics at /sse/metrics/: None (endpoint
    # off), "staff" (logged-in staff users) or "token" (METRICS_TOKEN).
    "METRICS_ACCESS": None,
    # Bearer token for the metrics endpoint when METRICS_ACCESS is "token".
    "METRICS_TOKEN": None,
    # Seconds between two task_progress events of one task run. Updates in
    # between are skipped, not delayed: the next one carries the newest state.
    # 0 publishes every update.
    "TASK_PROGRESS_INTERVAL": 0.5,
    # Alias in TASKS of a django-tasks-db backend whose tasks a thread of each
    # server process runs (development: runserver alone runs everything).
    # None: no worker in the server; run `manage.py db_worker` processes.
    "EMBEDDED_TASK_WORKER": None,
}


def setting(name: str) -> Any:
    """Return the NOTIFICATIONS option ``name``, or its default."""
    return {**DEFAULTS, **getattr(settings, "NOTIFICATIONS", {})}[name]
