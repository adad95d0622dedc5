"""History kept in this process's memory: the embedded default."""

import heapq
import itertools
import secrets
import threading
from bisect import bisect_right

from ..encoding import Event
from .base import EventHistory, EventId, Page, Record


class InMemoryHistory(EventHistory):
    """
    Keep events in per-topic ring buffers in this process.

    The epoch is random per process, so after a restart every old id is
    recognised as foreign and the client is told to reset. runserver's
    autoreloader hands the history over to the next child with dump() and
    restore() (see servers/runserver.py), so a reload keeps ids and catch-up.
    """

    def __init__(self, size: int):
        # No options: a keyword in HISTORY_OPTIONS (a typo, or one meant for
        # another backend) is a TypeError that check E007 reports, not a
        # setting silently ignored.
        super().__init__(size)
        self.epoch = secrets.token_hex(4)
        self._seq = 0
        # Per topic, its records oldest first. Evicted records are dropped
        # from the front in batches, so an append costs O(1) amortised and a
        # read finds its start by bisection.
        self._records: dict[str, list[Record]] = {}
        # Highest seq evicted per topic: a reader behind it missed events.
        self._evicted: dict[str, int] = {}
        # publish() may run on any thread; appends must not interleave, and
        # a read must see one consistent state.
        self._lock = threading.Lock()

    async def append(self, topic: str, event_type: str, data: str) -> Event:
        [event] = await self.append_many([(topic, event_type, data)])
        return event

    async def append_many(self, items: list[tuple[str, str, str]]) -> list[Event]:
        with self._lock:
            # All or nothing: every record is built before the first is
            # stored, so a failure while building one leaves the history as
            # it was (no event, no seq used).
            new = [
                Record(seq, topic, Event(event_type, data, f"{self.epoch}-{seq}"))
                for seq, (topic, event_type, data) in enumerate(items, start=self._seq + 1)
            ]
            for record in new:
                records = self._records.setdefault(record.topic, [])
                records.append(record)
                if len(records) > 2 * self.size:
                    self._evict(record.topic, records)
            self._seq += len(new)
        return [record.event for record in new]

    async def head(self) -> EventId:
        return EventId(self.epoch, self._seq)

    async def read(self, topics: list[str], after: EventId, limit: int) -> Page | None:
        with self._lock:
            if after.epoch != self.epoch or after.seq > self._seq:
                return None
            for topic in topics:
                records = self._records.get(topic)
                if records is not None and len(records) > self.size:
                    self._evict(topic, records)
                if self._evicted.get(topic, 0) > after.seq:
                    return None
            head = self._seq
            newer = [self._after(self._records.get(topic, ()), after.seq) for topic in topics]
        found = list(itertools.islice(heapq.merge(*newer, key=_seq), limit))
        through = found[-1].seq if len(found) == limit and limit < sum(map(len, newer)) else head
        return Page(found, EventId(self.epoch, through))

    @staticmethod
    def _after(records, seq: int) -> list[Record]:
        return records[bisect_right(records, seq, key=_seq) :]

    def _evict(self, topic: str, records: list[Record]) -> None:
        # Caller holds self._lock.
        excess = len(records) - self.size
        if excess > 0:
            self._evicted[topic] = records[excess - 1].seq
            del records[:excess]

    def dump(self) -> dict:
        """Return the whole history as JSON-serialisable data."""
        with self._lock:
            for topic, records in self._records.items():
                self._evict(topic, records)
            return {
                "epoch": self.epoch,
                "seq": self._seq,
                "evicted": dict(self._evicted),
                "events": {
                    topic: [[r.seq, r.event.type, r.event.data, r.event.id] for r in records]
                    for topic, records in self._records.items()
                },
            }

    def restore(self, state: dict) -> None:
        """Replace the history with one produced by dump()."""
        with self._lock:
            self.epoch = state["epoch"]
            self._seq = state["seq"]
            self._evicted = dict(state["evicted"])
            self._records = {
                topic: [
                    Record(seq, topic, Event(event_type, data, event_id))
                    for seq, event_type, data, event_id in rows
                ]
                for topic, rows in state["events"].items()
            }


def _seq(record: Record) -> int:
    return record.seq
