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
event when the history lost events the client had not seen (see catchup.py).
"""

import asyncio
import logging
import random
from collections.abc import AsyncIterator

from . import process
from .conf import setting
from .encoding import encode_retry
from .exceptions import BackendUnavailable
from .fanout import EXPIRED, REVOKED, SHUTDOWN, SLOW, Listener
from .hub import Hub, get_hub
from .protocol import (
    LIMIT_EXCEEDED,
    LOGGED_OUT,
    MAX_AGE,
    STREAM_EXPIRED,
    closing_frame,
    farewell,
    heartbeat_frame,
    last_part,
)

logger = logging.getLogger(__name__)

# Why a stream expired, as sent in the stream_expired event.
EXPIRED_REASONS = {EXPIRED: MAX_AGE, REVOKED: LOGGED_OUT}


def _expire_later(listener: Listener) -> asyncio.TimerHandle | None:
    age = setting("MAX_STREAM_AGE")
    if age is None:
        return None
    # Spread expiries so streams opened together (after a restart) do not
    # all reconnect together again.
    return asyncio.get_running_loop().call_later(age * random.uniform(0.75, 1), listener.close, EXPIRED)


class IdleClock:
    """
    Wake ``listener`` when its stream has sent nothing for ``seconds``.

    One timer per stream that fires at most once per heartbeat, rather than
    a timeout around every wait: a stream that writes an event every few
    milliseconds would otherwise make and cancel a timer for each, and those
    short-lived objects are what the garbage collector then walks.
    """

    __slots__ = ("listener", "seconds", "last_sent", "due", "_timer")

    def __init__(self, listener: Listener, seconds: float):
        self.listener = listener
        self.seconds = seconds
        self.due = False
        loop = asyncio.get_running_loop()
        self.last_sent = loop.time()
        self._timer = loop.call_at(self.last_sent + seconds, self._check)

    def sent(self) -> None:
        """Note that the stream just sent something."""
        self.last_sent = asyncio.get_running_loop().time()
        self.due = False

    def cancel(self) -> None:
        self._timer.cancel()

    def _check(self) -> None:
        loop = asyncio.get_running_loop()
        wake_at = self.last_sent + self.seconds
        if loop.time() >= wake_at:
            self.due = True
            self.listener.wakeup.set()
            wake_at = loop.time() + self.seconds
        self._timer = loop.call_at(wake_at, self._check)


async def event_stream(
    topics: list[str],
    last_event_id: str | None,
    user: str | None = None,
    keepalive_events: bool = False,
    hub: Hub | None = None,
) -> AsyncIterator[bytes]:
    """
    Yield the SSE frames of one connection until it ends. ``user`` is the
    primary key of the authenticated user, if any, for per-user limits.
    With ``keepalive_events`` heartbeats are ``keepalive`` events, and one
    follows the opening frames. ``hub`` defaults to the running loop's.
    """
    retry_ms = setting("RETRY_MS")
    heartbeat = setting("HEARTBEAT")
    keepalive = heartbeat_frame(keepalive_events)
    hub = hub or get_hub()
    if process.stopping:
        yield last_part(farewell(retry_ms))
        return
    # No await between this check and hub.add(): concurrent connections are
    # counted one by one.
    reached = hub.limit_reached(user)
    if reached is not None:
        name, limit = reached
        hub.stats.refusals[name] += 1
        yield last_part(closing_frame(LIMIT_EXCEEDED, setting("LIMIT_RETRY_MS"), limit=name, max=limit))
        return
    listener = Listener(topics, setting("STREAM_QUEUE_SIZE"), setting("STREAM_QUEUE_BYTES"), user)
    expiry = _expire_later(listener)
    idle = None
    try:
        # Each page of the catch-up is sent as it comes, the last one with
        # what follows it, so a short catch-up is one write.
        held, pages = encode_retry(retry_ms), 0
        try:
            await hub.add(listener)
            async for frames in hub.catch_up(listener, last_event_id):
                if pages:
                    yield held
                    held = b""
                held += frames
                pages += 1
        except BackendUnavailable as exc:
            # Redis is restarting, say: end now with retry, and the browser
            # comes back with its Last-Event-ID, rather than wait here
            # without the events it missed.
            logger.warning("Stream could not start topics=%s error=%r", ",".join(topics), str(exc))
            yield last_part(held)
            return
        yield held + keepalive if keepalive_events else held
        idle = IdleClock(listener, heartbeat)
        while True:
            if not listener.frames and listener.close_reason is None:
                if not idle.due:
                    await listener.wakeup.wait()
                if idle.due and not listener.frames and listener.close_reason is None:
                    listener.wakeup.clear()
                    yield keepalive
                    idle.sent()
                    continue
            if listener.close_reason == SLOW:
                return
            if listener.close_reason == REVOKED:
                # Queued events are no longer this user's to read.
                yield last_part(closing_frame(STREAM_EXPIRED, retry_ms, reason=EXPIRED_REASONS[REVOKED]))
                return
            frames = listener.take()
            if listener.close_reason == SHUTDOWN:
                yield last_part(frames + farewell(retry_ms))
                return
            if listener.close_reason == EXPIRED:
                expired = closing_frame(STREAM_EXPIRED, retry_ms, reason=EXPIRED_REASONS[EXPIRED])
                yield last_part(frames + expired)
                return
            if frames:
                yield frames
                idle.sent()
    finally:
        if idle is not None:
            idle.cancel()
        if expiry is not None:
            expiry.cancel()
        hub.remove(listener)
