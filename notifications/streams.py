"""
The body of one event stream: replay, live events, keep-alive, farewell.

A stream ends in one of four ways:

- the client disconnects: Django cancels the body iterator, and the
  ``finally`` below unregisters the listener at once;
- the client is too slow: the hub closes its listener rather than let its
  queue grow or drop events; the response ends and the client reconnects and
  catches up from history;
- the server stops: the hub closes every listener with SHUTDOWN, the stream
  sends what is queued, then a ``server_shutdown`` event carrying ``retry:``,
  and ends, so the response is properly terminated (see lifecycle.py);
- it cannot start because the channel layer or the history is unreachable
  (Redis restarting): it sends ``retry:`` and ends at once, and the client
  comes back with its Last-Event-ID.

While it is open, the hub may replace what is queued with a ``stream_reset``
event when the history lost events the client saw (see hub.py).
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator

from . import process
from .conf import setting
from .encoding import Event, encode_comment, encode_event, encode_retry
from .exceptions import BackendUnavailable, InvalidEventId
from .history import EventId, get_history
from .hub import SHUTDOWN, SLOW, Listener, get_hub, reset_frame
from .hub import STREAM_RESET as STREAM_RESET

logger = logging.getLogger(__name__)

SERVER_SHUTDOWN = "server_shutdown"


def farewell(retry_ms: int) -> bytes:
    """Return the frame that tells a client the server is going away."""
    data = json.dumps({"reconnect_after_ms": retry_ms})
    return encode_retry(retry_ms) + encode_event(Event(SERVER_SHUTDOWN, data))


async def catch_up(listener: Listener, last_event_id: str | None) -> bytes:
    """
    Return the frames a client resuming from ``last_event_id`` missed, or a
    ``stream_reset`` event when they cannot be known, and make the listener
    skip live frames already covered.
    """
    if last_event_id is None:
        return b""
    history = get_history()
    try:
        events = await history.events_after(listener.topics, EventId.parse(last_event_id))
        reason = "history_unavailable"
    except InvalidEventId:
        events, reason = None, "invalid_id"
    if events is None:
        head = await history.head()
        listener.skip_through(head.seq)
        return reset_frame(reason, head)
    if events:
        listener.skip_through(EventId.parse(events[-1].id).seq)
    return b"".join(encode_event(event) for event in events)


async def event_stream(topics: list[str], last_event_id: str | None) -> AsyncIterator[bytes]:
    """Yield the SSE frames of one connection until it ends."""
    retry_ms = setting("RETRY_MS")
    heartbeat = setting("HEARTBEAT")
    hub = get_hub()
    if process.stopping:
        yield farewell(retry_ms)
        return
    listener = Listener(topics, setting("STREAM_QUEUE_SIZE"))
    try:
        try:
            await hub.add(listener)
            opening = encode_retry(retry_ms) + await catch_up(listener, last_event_id)
        except BackendUnavailable as exc:
            # Redis is restarting, say: end now with retry, and the browser
            # comes back with its Last-Event-ID, rather than wait here
            # without the events it missed.
            logger.warning("Stream could not start topics=%s error=%r", ",".join(topics), str(exc))
            yield encode_retry(retry_ms)
            return
        yield opening
        while True:
            if not listener.frames and listener.close_reason is None:
                try:
                    async with asyncio.timeout(heartbeat):
                        await listener.wakeup.wait()
                except TimeoutError:
                    yield encode_comment()
                    continue
            if listener.close_reason == SLOW:
                return
            frames = listener.take()
            if listener.close_reason == SHUTDOWN:
                yield frames + farewell(retry_ms)
                return
            if frames:
                yield frames
    finally:
        hub.remove(listener)
