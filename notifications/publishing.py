"""
Publish events: the history stores each event and assigns its id, then a
channel-layer message wakes up the hub of every process that has listeners
for its topic.

A publish is accepted once the history has stored the event: from then on
it is delivered, even if the wake-up message is lost (the hubs also poll the
history). It is refused, with nothing stored, when the event is invalid, the
process is stopping, or the history cannot be reached.
"""

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Coroutine, Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder

from . import process
from .conf import setting
from .exceptions import NotificationsError, PayloadError, PublishRefused, UndeliverableEvent, describe
from .history import get_history
from .protocol import ANY_TOPIC, EVERY_HUB_GROUP, layer_message
from .topics import check_registered, group_name, user_topic

logger = logging.getLogger(__name__)

# How often publish() checks that the serving loop still runs while it waits.
SYNC_PUBLISH_CHECK_INTERVAL = 0.5

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
    an invalid event leaves no trace. Raise BackendUnavailable, with nothing
    stored, when the history cannot be reached (Redis down), and
    UndeliverableEvent in a process that serves no streams and keeps its
    history to itself (a manage.py shell with the in-memory history). Once
    this returns, the event is delivered to every stream of its topic.
    """
    [event_id] = await _publish([_prepare(event_type, data, user)])
    return event_id


async def apublish_many(events: Iterable[tuple[str, Any] | tuple[str, Any, Any]]) -> list[str]:
    """
    Publish several events at once and return their ids, in order.

    Each event is ``(event_type, data)`` or ``(event_type, data, user)``:
    "notify these 10,000 users" is one call, one history write and one
    channel-layer message in all. Every event is checked before any is
    stored, and the history stores all of them or none: a call that raises
    (BackendUnavailable included) leaves nothing to deliver, so it can be
    retried without duplicates. RedisHistory refuses more than MAX_BATCH
    (10,000) events in one call with PayloadError, before storing any.
    """
    # The same data sent to many users is encoded once. Keyed by identity,
    # so the data is kept alive here: a freed object's id can be reused.
    encoded: dict[int, tuple[Any, str]] = {}
    items = [_prepare(*event, encoded=encoded) for event in events]
    return await _publish(items) if items else []


def _prepare(
    event_type: str, data: Any, user: Any = None, *, encoded: dict | None = None
) -> tuple[str, str, str]:
    """Return (topic, event type, JSON data) of an event, checked; raise if it is invalid."""
    check_registered(event_type)
    topic = event_type if user is None else user_topic(user)
    if encoded is None:
        return topic, event_type, encode_data(data)
    if id(data) not in encoded:
        encoded[id(data)] = (data, encode_data(data))
    text = encoded[id(data)][1]
    return topic, event_type, text


async def _publish(items: list[tuple[str, str, str]]) -> list[str]:
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
    events = await history.append_many(items)
    for _, event_type, _ in items:
        published[event_type] += 1
    topics = {topic for topic, _, _ in items}
    # One wake-up: the topic's group, or every hub's when there are several.
    if len(topics) == 1:
        group, message = group_name(items[0][0]), layer_message(items[0][0], events[-1].id)
    else:
        group, message = EVERY_HUB_GROUP, layer_message(ANY_TOPIC, events[-1].id)
    layer = get_channel_layer(setting("CHANNEL_LAYER"))
    try:
        await layer.group_send(group, message)
    except Exception as exc:
        # Layers raise their own errors (redis-py's for channels_redis). The
        # events are stored: the hubs' next poll of the history delivers them.
        logger.warning(
            "Channel layer group_send failed id=%s error=%r; streams get the event within "
            "NOTIFICATIONS['POLL_INTERVAL']",
            events[-1].id,
            describe(exc),
        )
    return [event.id for event in events]


def publish(event_type: str, data: Any, *, user: Any = None) -> str:
    """
    Publish from synchronous code (views, signal receivers, tasks, commands,
    the shell) and return the event id. In async code use apublish().
    """
    return _run_in_serving_loop(apublish(event_type, data, user=user))


def publish_many(events: Iterable[tuple[str, Any] | tuple[str, Any, Any]]) -> list[str]:
    """Sync twin of apublish_many()."""
    return _run_in_serving_loop(apublish_many(list(events)))


async def _awaited[T](coroutine: Coroutine[Any, Any, T]) -> T:
    return await coroutine


def _run_in_serving_loop[T](coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coroutine.close()
        raise NotificationsError(
            "publish() cannot be called from a running event loop. Use 'await apublish()' in async code."
        )
    loop = process.serving_loop
    if loop is None or not loop.is_running():
        return async_to_sync(_awaited)(coroutine)
    # Hand the event to the loop that serves streams: the in-memory layer is
    # not thread-safe, and its receivers wait on that loop. Wait as long as
    # that loop runs: giving up earlier would report an event as failed that
    # may still be stored and delivered.
    future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    while True:
        try:
            return future.result(SYNC_PUBLISH_CHECK_INTERVAL)
        except TimeoutError:
            if not loop.is_running():
                future.cancel()
                raise PublishRefused(
                    "The server stopped before the event was published. Publish it again after the restart."
                ) from None
