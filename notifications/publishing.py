"""
Publish events: history assigns the id, the channel layer carries the event
to the hub of every process that has listeners for its type.
"""

import asyncio
import json
from collections import Counter
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder

from . import process
from .conf import setting
from .exceptions import (
    BackendUnavailable,
    NotificationsError,
    PayloadError,
    PublishRefused,
    UndeliverableEvent,
    describe,
)
from .history import get_history
from .topics import check_registered, group_name, user_topic

# How long publish() waits for the serving loop to take an event.
SYNC_PUBLISH_TIMEOUT = 30

# Events published by this process, per event type (read by metrics.py).
published: Counter[str] = Counter()


def encode_data(data: Any) -> str:
    """Return ``data`` as compact JSON; raise PayloadError if it cannot be."""
    try:
        # NaN and Infinity are not JSON: a browser's JSON.parse would fail.
        text = json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"Event data is not JSON-serialisable: {exc}.") from exc
    size = len(text.encode())
    limit = setting("MAX_PAYLOAD_BYTES")
    if size > limit:
        raise PayloadError(
            f"Event data is {size} bytes as JSON, more than NOTIFICATIONS['MAX_PAYLOAD_BYTES'] ({limit})."
        )
    return text


async def apublish(event_type: str, data: Any, *, user: Any = None) -> str:
    """
    Publish ``data`` as an event of ``event_type`` and return its id.

    With ``user`` (a user or a primary key) the event goes to that user's
    private topic only. Everything is checked before anything is stored, so
    an invalid event leaves no trace. Raise BackendUnavailable when the
    history or the channel layer cannot be reached (Redis down), and
    UndeliverableEvent in a process that serves no streams and keeps its
    history to itself (a manage.py shell with the in-memory history).
    """
    check_registered(event_type)
    topic = event_type if user is None else user_topic(user)
    text = encode_data(data)
    if process.stopping:
        raise PublishRefused(
            "This process is shutting down and accepts no new events. "
            "Publish from another process or after the restart."
        )
    history = get_history()
    if not history.shared_between_processes and process.never_serves():
        raise UndeliverableEvent(
            f"An event published from 'manage.py {process.management_command()}' stays in this "
            f"process: {type(history).__name__} is not shared with the server. Set "
            "NOTIFICATIONS['HISTORY_BACKEND'] to 'notifications.history.database.DatabaseHistory' "
            "(or RedisHistory), or POST the event to the server's /sse/publish/<type>/ endpoint."
        )
    event = await history.append(topic, event_type, text)
    layer = get_channel_layer(setting("CHANNEL_LAYER"))
    message = {
        "type": "notifications.event",
        "topic": topic,
        "event_type": event_type,
        "id": event.id,
        "data": text,
    }
    try:
        await layer.group_send(group_name(topic), message)
    except Exception as exc:
        # Layers raise their own errors (redis-py's for channels_redis).
        raise BackendUnavailable(
            f"Event {event.id!r} was stored in history but the channel layer failed to send it "
            f"({describe(exc)}); open streams may miss it."
        ) from exc
    published[event_type] += 1
    return event.id


def publish(event_type: str, data: Any, *, user: Any = None) -> str:
    """
    Publish from synchronous code (views, signal receivers, tasks, commands,
    the shell) and return the event id. In async code use apublish().
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise NotificationsError(
            "publish() cannot be called from a running event loop. Use 'await apublish()' in async code."
        )
    loop = process.serving_loop
    if loop is not None and loop.is_running():
        # Hand the event to the loop that serves streams: the in-memory layer
        # is not thread-safe, and its receivers wait on that loop.
        future = asyncio.run_coroutine_threadsafe(apublish(event_type, data, user=user), loop)
        return future.result(SYNC_PUBLISH_TIMEOUT)
    return async_to_sync(apublish)(event_type, data, user=user)
