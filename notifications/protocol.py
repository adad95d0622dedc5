"""
The wire protocol: what a stream says besides published events, the id
format, and the message the channel layer carries.

Everything a client must agree on lives here, and the JavaScript client
(static/notifications/notifications.js) repeats these names; a test compares
the two.

Control events a stream may send (data is JSON):

- ``server_shutdown``: the server is stopping; come back after
  ``reconnect_after_ms`` with your Last-Event-ID, nothing is lost;
- ``stream_reset``: what this stream missed cannot be replayed (``reason``:
  ``history_unavailable`` or ``invalid_id``); refetch your state; the event's
  id is the position the stream resumes from;
- ``stream_expired``: the stream reached its age limit (``max_age``) or its
  user logged out (``logged_out``); reconnect, access is checked again;
- ``limit_exceeded``: a limit refused this stream (``limit`` names the
  setting); come back after ``reconnect_after_ms``;
- ``keepalive``: a heartbeat for clients that asked for visible ones.
"""

import contextvars
import functools
import json
import re
from dataclasses import dataclass

from .encoding import Event, encode_comment, encode_event, encode_retry
from .exceptions import InvalidEventId

SERVER_SHUTDOWN = "server_shutdown"
STREAM_RESET = "stream_reset"
STREAM_EXPIRED = "stream_expired"
LIMIT_EXCEEDED = "limit_exceeded"
KEEPALIVE = "keepalive"
CONTROL_EVENTS = (SERVER_SHUTDOWN, STREAM_RESET, STREAM_EXPIRED, LIMIT_EXCEEDED, KEEPALIVE)

# Why a stream was reset.
HISTORY_UNAVAILABLE = "history_unavailable"
INVALID_ID = "invalid_id"
# Why a stream expired.
MAX_AGE = "max_age"
LOGGED_OUT = "logged_out"

# The type of the channel-layer message that announces a new event. The
# message only wakes the hubs up: they read the event itself from history,
# in order, so a message the layer drops, repeats or reorders changes when an
# event arrives, never whether or in which order.
LAYER_MESSAGE_TYPE = "notifications.event"

# Every hub's channel is also in this group, woken once for a publish that
# spans several topics (publish_many to many users). A hyphen, so that no
# topic's group ("notifications.<topic>") can be named alike.
EVERY_HUB_GROUP = "notifications-every-hub"
# The topic of a wake-up sent to EVERY_HUB_GROUP.
ANY_TOPIC = "*"

_ID = re.compile(r"([0-9a-z]{1,32})-([0-9]{1,19})")


@dataclass(frozen=True, order=True, slots=True)
class EventId:
    """A position in the history: ``<epoch>-<seq>`` on the wire."""

    epoch: str
    seq: int

    @classmethod
    def parse(cls, value: str) -> "EventId":
        """Return the EventId ``value`` names; raise InvalidEventId if malformed."""
        match = _ID.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise InvalidEventId(f"Event id {value!r} is not valid. Ids look like '<epoch>-<number>'.")
        return cls(match[1], int(match[2]))

    def __str__(self) -> str:
        return f"{self.epoch}-{self.seq}"


def layer_message(topic: str, event_id: str) -> dict:
    """Return the channel-layer message announcing event ``event_id`` on ``topic``."""
    return {"type": LAYER_MESSAGE_TYPE, "topic": topic, "id": event_id}


def announced_id(message: dict) -> EventId:
    """Return the id a layer message announces; raise InvalidEventId if it has none."""
    return EventId.parse(message.get("id"))


def closing_frame(event_type: str, retry_ms: int, **data: object) -> bytes:
    """Return ``retry:`` and a last event telling the client when to come back."""
    text = json.dumps({**data, "reconnect_after_ms": retry_ms})
    return encode_retry(retry_ms) + encode_event(Event(event_type, text))


# Set in a request's context when its stream yields its last part, so that
# the handler sends that part and the end of the response as one message
# (notifications/asgi.py): when thousands of streams end at once, a message
# less per stream is a write less through Daphne and Twisted each.
LAST_PART = contextvars.ContextVar("notifications_last_part", default=False)


def last_part(frames: bytes) -> bytes:
    """Return ``frames``, noting that the stream ends after them."""
    LAST_PART.set(True)
    return frames


@functools.lru_cache(maxsize=8)
def farewell(retry_ms: int) -> bytes:
    """Return the frame that tells a client the server is going away."""
    # Cached: a drain sends the same bytes to every stream at once.
    return closing_frame(SERVER_SHUTDOWN, retry_ms)


def reset_frame(reason: str, position: EventId) -> bytes:
    """Return a ``stream_reset`` event for ``reason`` that resumes at ``position``."""
    return encode_event(Event(STREAM_RESET, json.dumps({"reason": reason}), str(position)))


def heartbeat_frame(as_event: bool) -> bytes:
    """Return the keep-alive frame: a ``keepalive`` event if ``as_event``, else a comment."""
    return encode_event(Event(KEEPALIVE, "{}")) if as_event else encode_comment()
