"""History kept in this process's memory: the embedded default."""

import secrets
import threading
from collections import deque

from ..encoding import Event
from .base import EventHistory, EventId, Page, Record


class InMemoryHistory(EventHistory):
    """
    Keep events in per-topic ring buffers in this process.

    The epoch is random per process, so after a restart every old id is
    recognised as foreign and the client is told to reset. runserver's
    autoreloader hands the history over to the next child with dump() and
    restore() (see lifecycle.py), so a reload keeps ids and catch-up.
    """

    def __init__(self, size: int, **options):
        super().__init__(size)
        self.epoch = secrets.token_hex(4)
        self._seq = 0
        self._events: dict[str, deque[tuple[int, Event]]] = {}
        # Highest seq evicted per topic: a client behind it missed events.
        self._evicted: dict[str, int] = {}
        # publish() may run on any thread; appends must not interleave.
        self._lock = threading.Lock()

    async def append(self, topic: str, event_type: str, data: str) -> Event:
        with self._lock:
            self._seq += 1
            event = Event(event_type, data, f"{self.epoch}-{self._seq}")
            events = self._events.setdefault(topic, deque())
            events.append((self._seq, event))
            while len(events) > self.size:
                self._evicted[topic] = events.popleft()[0]
            return event

    async def head(self) -> EventId:
        return EventId(self.epoch, self._seq)

    async def events_after(self, topics: list[str], last_id: EventId) -> list[Event] | None:
        with self._lock:
            if last_id.epoch != self.epoch or last_id.seq > self._seq:
                return None
            found = []
            for topic in topics:
                if self._evicted.get(topic, 0) > last_id.seq:
                    return None
                found.extend(item for item in self._events.get(topic, ()) if item[0] > last_id.seq)
        found.sort(key=lambda item: item[0])
        return [event for _, event in found]

    async def read(self, topics: list[str], after: EventId, limit: int) -> Page | None:
        # Minimal, for the backend contract tests; issue 12 rewrites it.
        with self._lock:
            head = EventId(self.epoch, self._seq)
            if after.epoch != self.epoch or after.seq > self._seq:
                return None
            if any(self._evicted.get(topic, 0) > after.seq for topic in topics):
                return None
            found = sorted(
                (seq, topic, event)
                for topic in topics
                for seq, event in self._events.get(topic, ())
                if seq > after.seq
            )
        records = [Record(seq, topic, event) for seq, topic, event in found[:limit]]
        return Page(records, EventId(self.epoch, records[-1].seq) if len(found) > limit else head)

    def dump(self) -> dict:
        """Return the whole history as JSON-serialisable data."""
        with self._lock:
            return {
                "epoch": self.epoch,
                "seq": self._seq,
                "evicted": dict(self._evicted),
                "events": {
                    topic: [[seq, event.type, event.data, event.id] for seq, event in events]
                    for topic, events in self._events.items()
                },
            }

    def restore(self, state: dict) -> None:
        """Replace the history with one produced by dump()."""
        with self._lock:
            self.epoch = state["epoch"]
            self._seq = state["seq"]
            self._evicted = dict(state["evicted"])
            self._events = {
                topic: deque(
                    (seq, Event(event_type, data, event_id)) for seq, event_type, data, event_id in rows
                )
                for topic, rows in state["events"].items()
            }
