"""
The body of one event stream: replay, live events, keep-alive, farewell.

A stream ends in one of five ways:

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
  comes back with its Last-Event-ID;
- it reaches MAX_STREAM_AGE, or its user logs out in this process: it ends
  with a ``stream_expired`` event, and the reconnect checks access again.

An idle stream sends a heartbeat every HEARTBEAT seconds: a comment, which
browsers ignore, or, for a client that asked with ``keepalive=event``, a
``keepalive`` event (data ``{}``, no id). EventSource hides comments, so a page
that watches for a dead connection needs a heartbeat it can see; such a
stream also opens with one, which tells the page at once that the stream is
live and, through the event's ``lastEventId``, the position it starts from.

A stream over a limit (MAX_STREAMS, MAX_STREAMS_PER_USER) is still a 200: it
carries only ``retry: LIMIT_RETRY_MS`` and a ``limit_exceeded`` event, so an
EventSource waits long before trying again instead of failing for good or
reconnecting at once.

While it is open, the hub may replace what is queued with a ``stream_reset``
event when the history lost events the client saw (see hub.py).
"""

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator

from . import process
from .conf import setting
from .encoding import Event, encode_comment, encode_event, encode_position, encode_retry
from .exceptions import BackendUnavailable, InvalidEventId
from .history import EventId, get_history
from .hub import EXPIRED, REVOKED, SHUTDOWN, SLOW, Listener, get_hub, reset_frame
from .hub import STREAM_RESET as STREAM_RESET

logger = logging.getLogger(__name__)

SERVER_SHUTDOWN = "server_shutdown"
STREAM_EXPIRED = "stream_expired"
LIMIT_EXCEEDED = "limit_exceeded"
KEEPALIVE = "keepalive"

# Why a stream expired, as sent in the stream_expired event.
EXPIRED_REASONS = {EXPIRED: "max_age", REVOKED: "logged_out"}


def closing_frame(event_type: str, retry_ms: int, **data: object) -> bytes:
    """Return ``retry:`` and a last event telling the client when to come back."""
    text = json.dumps({**data, "reconnect_after_ms": retry_ms})
    return encode_retry(retry_ms) + encode_event(Event(event_type, text))


def farewell(retry_ms: int) -> bytes:
    """Return the frame that tells a client the server is going away."""
    return closing_frame(SERVER_SHUTDOWN, retry_ms)


async def catch_up(listener: Listener, last_event_id: str | None) -> bytes:
    """
    Return the frames a client resuming from ``last_event_id`` missed, or a
    ``stream_reset`` event when they cannot be known, and make the listener
    skip live frames already covered. A new stream (no ``last_event_id``)
    gets the position it starts from instead.
    """
    history = get_history()
    stats = get_hub().stats
    if last_event_id is None:
        # Without a position, a client whose connection drops before its
        # first event would reconnect without Last-Event-ID and miss what was
        # published meanwhile. A frame with an id and no data sets the
        # browser's last event id and fires no event.
        head = await history.head()
        listener.skip_through(head.seq)
        return encode_position(str(head))
    try:
        events = await history.events_after(listener.topics, EventId.parse(last_event_id))
        reason = "history_unavailable"
    except InvalidEventId:
        events, reason = None, "invalid_id"
    if events is None:
        stats[f"resets.{reason}"] += 1
        head = await history.head()
        listener.skip_through(head.seq)
        return reset_frame(reason, head)
    stats["replays"] += 1
    stats["events_replayed"] += len(events)
    if events:
        listener.skip_through(EventId.parse(events[-1].id).seq)
    return b"".join(encode_event(event) for event in events)


def _expire_later(listener: Listener) -> asyncio.TimerHandle | None:
    age = setting("MAX_STREAM_AGE")
    if age is None:
        return None
    # Spread expiries so streams opened together (after a restart) do not
    # all reconnect together again.
    return asyncio.get_running_loop().call_later(age * random.uniform(0.75, 1), listener.close, EXPIRED)


def heartbeat_frame(as_event: bool) -> bytes:
    """Return the keep-alive frame: a ``keepalive`` event if ``as_event``, else a comment."""
    return encode_event(Event(KEEPALIVE, "{}")) if as_event else encode_comment()


async def event_stream(
    topics: list[str], last_event_id: str | None, user: str | None = None, keepalive_events: bool = False
) -> AsyncIterator[bytes]:
    """
    Yield the SSE frames of one connection until it ends. ``user`` is the
    primary key of the authenticated user, if any, for per-user limits.
    With ``keepalive_events`` heartbeats are ``keepalive`` events, and one
    follows the opening frames.
    """
    retry_ms = setting("RETRY_MS")
    heartbeat = setting("HEARTBEAT")
    keepalive = heartbeat_frame(keepalive_events)
    hub = get_hub()
    if process.stopping:
        yield farewell(retry_ms)
        return
    # No await between this check and hub.add(): concurrent connections are
    # counted one by one.
    reached = hub.limit_reached(user)
    if reached is not None:
        name, limit = reached
        hub.refusals[name] += 1
        yield closing_frame(LIMIT_EXCEEDED, setting("LIMIT_RETRY_MS"), limit=name, max=limit)
        return
    listener = Listener(topics, setting("STREAM_QUEUE_SIZE"), user)
    expiry = _expire_later(listener)
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
        if keepalive_events:
            opening += keepalive
        yield opening
        while True:
            if not listener.frames and listener.close_reason is None:
                try:
                    async with asyncio.timeout(heartbeat):
                        await listener.wakeup.wait()
                except TimeoutError:
                    yield keepalive
                    continue
            if listener.close_reason == SLOW:
                return
            if listener.close_reason == REVOKED:
                # Queued events are no longer this user's to read.
                yield closing_frame(STREAM_EXPIRED, retry_ms, reason=EXPIRED_REASONS[REVOKED])
                return
            frames = listener.take()
            if listener.close_reason == SHUTDOWN:
                yield frames + farewell(retry_ms)
                return
            if listener.close_reason == EXPIRED:
                yield frames + closing_frame(STREAM_EXPIRED, retry_ms, reason=EXPIRED_REASONS[EXPIRED])
                return
            if frames:
                yield frames
    finally:
        if expiry is not None:
            expiry.cancel()
        hub.remove(listener)
