"""
The interface every history backend implements.

History is kept per topic: an event type, or a user's private topic (see
topics.py). It assigns each event its id, and it keeps the most recent events
per topic so that a client reconnecting with ``Last-Event-ID`` gets exactly
what it missed.

An id is ``<epoch>-<seq>``. ``seq`` grows by one for every event on every
topic in the history, so a single id marks a position across all the topics a
connection listens to. ``epoch`` names one lifetime of the history: an id from
another epoch (a restarted in-memory process, a flushed Redis) cannot be
replayed and makes the stream start with a reset.
"""

import re
from dataclasses import dataclass

from ..encoding import Event
from ..exceptions import InvalidEventId

_ID = re.compile(r"([0-9a-z]{1,32})-([0-9]{1,19})")


@dataclass(frozen=True, order=True, slots=True)
class EventId:
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


class EventHistory:
    """Assign ids to events and keep the newest ``size`` of each type."""

    # Whether every process sees the same history (and so the same ids).
    # Checks compare it with the channel layer: both or neither must be.
    shared_between_processes = False

    def __init__(self, size: int, **options):
        self.size = size

    async def append(self, topic: str, event_type: str, data: str) -> Event:
        """Store a new event of ``event_type`` on ``topic``; return it with its id."""
        raise NotImplementedError("subclasses of EventHistory must provide append()")

    async def head(self) -> EventId:
        """Return the id of the newest event (seq 0 when there is none)."""
        raise NotImplementedError("subclasses of EventHistory must provide head()")

    async def events_after(self, topics: list[str], last_id: EventId) -> list[Event] | None:
        """
        Return the events on ``topics`` published after ``last_id``, oldest
        first, or None when they cannot all be returned (another epoch, an id
        from the future, or events already evicted).
        """
        raise NotImplementedError("subclasses of EventHistory must provide events_after()")

    async def close(self) -> None:
        """Release connections; the default has none."""
