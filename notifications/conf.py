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
    # Events kept per event type for Last-Event-ID catch-up. 0 disables it.
    "HISTORY_SIZE": 1000,
    # Dotted path of the EventHistory class and its options. Several
    # processes need one shared history: "notifications.history.redis.RedisHistory"
    # with {"url": "redis://host:port/db"} (options: see that class).
    "HISTORY_BACKEND": "notifications.history.memory.InMemoryHistory",
    "HISTORY_OPTIONS": {},
    # Encoded frames a stream may hold unsent before it is closed as too
    # slow; the client reconnects and catches up from history.
    "STREAM_QUEUE_SIZE": 1000,
    # Event types one connection may subscribe to.
    "MAX_TYPES_PER_STREAM": 16,
    # Largest JSON payload publish() accepts, in bytes.
    "MAX_PAYLOAD_BYTES": 64 * 1024,
    # Bearer token for POST /sse/publish/<type>/. None turns the endpoint off.
    "PUBLISH_TOKEN": None,
    # Alias in CHANNEL_LAYERS that carries events between processes.
    "CHANNEL_LAYER": "default",
    # Seconds a stopping server waits for streams to end before closing
    # whatever is left.
    "DRAIN_TIMEOUT": 5,
}


def setting(name: str) -> Any:
    """Return the NOTIFICATIONS option ``name``, or its default."""
    return {**DEFAULTS, **getattr(settings, "NOTIFICATIONS", {})}[name]
