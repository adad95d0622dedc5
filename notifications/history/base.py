"""
The interface every history backend implements.

History is the log every stream is read from. It is kept per topic (an event
type, or a user's private topic, see topics.py), it assigns each event its
id, and it keeps the most recent events of each topic.

An id is ``<epoch>-<seq>``. ``seq`` grows by one for every event on every
topic, so a single id marks a position across all the topics a connection
listens to. ``epoch`` names one lifetime of the history: an id from another
epoch (a restarted in-memory process, a flushed Redis) cannot be replayed.

Backends owe two things to the delivery guarantee (README, "Delivery
guarantees"):

- append() assigns the seq and stores the event in one atomic step: once seq
  N is readable, every lower seq is readable too (or known evicted);
- append_many() does the same for a whole batch: all of it or none of it;
- read() answers from one consistent snapshot, and says up to where its
  answer is complete (``Page.through``), so a reader that continues from
  there never skips an event and never sees one twice.
"""

from dataclasses import dataclass

from ..encoding import Event
from ..protocol import EventId

__all__ = ["EventHistory", "EventId", "Page", "Record"]


@dataclass(frozen=True, slots=True)
class Record:
    """One stored event: its position in the log, its topic and the event itself."""

    seq: int
    topic: str
    event: Event


@dataclass(frozen=True, slots=True)
class Page:
    """
    The events of some topics after a position, oldest first.

    ``through`` is the position the answer is complete up to: every event of
    those topics with a seq at or below it and above the position asked for
    is in ``records``. It is the head of the history when the page was not cut
    short by its limit, else the last record's position.
    """

    records: list[Record]
    through: EventId


class EventHistory:
    """Assign ids to events and keep the newest ``size`` of each topic."""

    # Whether every process sees the same history (and so the same ids).
    shared_between_processes = False

    def __init__(self, size: int):
        # Options are the subclasses' own keyword arguments: none is
        # swallowed here, so an unknown one is a TypeError (check E007).
        self.size = size

    async def append(self, topic: str, event_type: str, data: str) -> Event:
        """Store a new event of ``event_type`` on ``topic``; return it with its id."""
        raise NotImplementedError("subclasses of EventHistory must provide append()")

    async def append_many(self, items: list[tuple[str, str, str]]) -> list[Event]:
        """
        Store (topic, event type, data) ``items`` in order, with consecutive
        seqs; return the events with their ids. All or nothing: when it
        raises, no event of ``items`` is stored and no seq is used, so a
        publish reported failed is never delivered.
        """
        raise NotImplementedError("subclasses of EventHistory must provide append_many()")

    async def head(self) -> EventId:
        """Return the id of the newest event (seq 0 when there is none)."""
        raise NotImplementedError("subclasses of EventHistory must provide head()")

    async def read(self, topics: list[str], after: EventId, limit: int) -> Page | None:
        """
        Return at most ``limit`` events of ``topics`` published after
        ``after``, oldest first, or None when they cannot all be returned:
        another epoch, a position ahead of the head, or events after it
        already evicted.
        """
        raise NotImplementedError("subclasses of EventHistory must provide read()")

    async def close(self) -> None:
        """Release connections; the default has none."""
