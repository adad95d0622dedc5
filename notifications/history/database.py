"""
History kept in the project's database through the Django ORM: shared by
every process that uses the same database, and kept across restarts, with
no service beyond the one the project already has (SQLite, PostgreSQL).

Tables (notifications/models.py):

- ``HistoryState``, one row: ``epoch`` and ``seq``, the global sequence;
- ``HistoryEvent``, one row per kept event, keyed by its seq, indexed by
  (topic, seq);
- ``HistoryTopic``, per topic: how many events are kept and the highest seq
  trimmed away, so read() knows when a client asks for something gone.

Atomic ids: an append (of one event or of a whole append_many() batch) is
one transaction whose first statement increments the state row, by the
number of events. That statement takes the row's lock (PostgreSQL, MySQL) or
SQLite's write lock, so appends take turns and commit in seq order: once a
reader sees seq N in the state row, every lower seq is committed. Starting
with a write, rather than SELECT ... FOR UPDATE, also keeps SQLite from
failing with "database is locked" when two deferred transactions that both
read first try to write.

Consistent reads without a snapshot transaction (READ COMMITTED gives none
across statements): read() takes the head from the state row first, then
the events up to it, then the eviction marks. Commit order makes the events
up to the head complete; checking evictions last means an event trimmed
while the read ran is noticed (the answer is then None, never a hole).

When the state row is missing (a new database, a flush) the next call
starts a new epoch and deletes what an old one left: old ids are foreign
and clients presenting them are reset, as with a flushed Redis.

Each instance runs its queries on one thread of its own, with its own
database connection: appends in one process take turns anyway, and no
caller can block the thread the queries need (publish() from asgiref's
shared sync thread hands the event to the serving loop and waits).
"""

import secrets
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, connections, transaction
from django.db.models import F

from ..encoding import Event
from ..exceptions import BackendUnavailable, describe
from .base import EventHistory, EventId, Page, Record


class DatabaseHistory(EventHistory):
    """
    Keep the newest ``size`` events of each topic in the database.

    Options (``NOTIFICATIONS['HISTORY_OPTIONS']``):

    - ``database``: the alias in DATABASES that holds the tables
      (``"default"``); ``manage.py migrate --database <alias>`` creates them.
    """

    shared_between_processes = True

    def __init__(self, size: int, *, database: str = DEFAULT_DB_ALIAS):
        super().__init__(size)
        # Checked here, not at the first publish (ConnectionDoesNotExist):
        # check E007 builds the history and reports this ValueError.
        known = list(connections.settings)
        if not isinstance(database, str) or database not in known:
            raise ValueError(
                f"DatabaseHistory option 'database' must be an alias in DATABASES, not {database!r}. "
                f"Known aliases: {', '.join(map(repr, known))}."
            )
        self.database = database
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notifications-history")
        self._call = sync_to_async(self._guarded, thread_sensitive=False, executor=executor)

    async def append(self, topic: str, event_type: str, data: str) -> Event:
        [event] = await self.append_many([(topic, event_type, data)])
        return event

    async def append_many(self, items: list[tuple[str, str, str]]) -> list[Event]:
        return await self._run(self._append_many, items)

    async def head(self) -> EventId:
        return await self._run(self._head)

    async def read(self, topics: list[str], after: EventId, limit: int) -> Page | None:
        return await self._run(self._read, topics, after, limit)

    async def close(self) -> None:
        """Close this history's database connection (the next call opens a new one)."""
        await self._run(self._close)

    async def _run(self, function, *args):
        return await self._call(function, *args)

    def _guarded(self, function, *args):
        try:
            return function(*args)
        except DatabaseError as exc:
            # The connection may be dead (a database restart): the next
            # call opens a fresh one.
            self._close()
            raise BackendUnavailable(f"The database history is unavailable: {describe(exc)}.") from exc

    # Each method below runs on the history's thread.

    def _close(self) -> None:
        connections[self.database].close()

    def _tables(self):
        """Return the managers of the state, topic and event tables, on this history's database."""
        from ..models import HistoryEvent, HistoryState, HistoryTopic

        return (model.objects.using(self.database) for model in (HistoryState, HistoryTopic, HistoryEvent))

    def _append_many(self, items: list[tuple[str, str, str]]) -> list[Event]:
        from ..models import HistoryEvent

        _, topics, events = self._tables()
        # One transaction for the whole batch: a failure anywhere in it rolls
        # back every event and the sequence advance, so a publish reported
        # failed leaves nothing for the hubs to deliver.
        with transaction.atomic(using=self.database):
            epoch, last = self._advance(len(items))
            first = last - len(items) + 1
            events.bulk_create(
                HistoryEvent(seq=seq, topic=topic, type=event_type, data=data)
                for seq, (topic, event_type, data) in enumerate(items, start=first)
            )
            for topic, added in Counter(topic for topic, _, _ in items).items():
                kept = topics.filter(topic=topic)
                if not kept.update(count=F("count") + added):
                    topics.create(topic=topic, count=added)
                excess = kept.values_list("count", flat=True).get() - self.size
                if excess > 0:
                    # Over the bound: drop the topic's oldest ``excess`` events.
                    cut = events.filter(topic=topic).order_by("seq").values_list("seq", flat=True)[excess - 1]
                    events.filter(topic=topic, seq__lte=cut).delete()
                    kept.update(count=F("count") - excess, evicted=cut)
        return [
            Event(event_type, data, f"{epoch}-{seq}")
            for seq, (_, event_type, data) in enumerate(items, start=first)
        ]

    def _head(self) -> EventId:
        states, _, _ = self._tables()
        state = states.filter(pk=1).values_list("epoch", "seq").first()
        if state is None:
            with transaction.atomic(using=self.database):
                state = self._advance(0)
        return EventId(*state)

    def _read(self, topics: list[str], after: EventId, limit: int) -> Page | None:
        _, kept, events = self._tables()
        head = self._head()
        if after.epoch != head.epoch or after.seq > head.seq:
            return None
        rows = list(
            events.filter(topic__in=topics, seq__gt=after.seq, seq__lte=head.seq)
            .order_by("seq")
            .values_list("seq", "topic", "type", "data")[: limit + 1]
        )
        if kept.filter(topic__in=topics, evicted__gt=after.seq).exists():
            return None
        records = [
            Record(seq, topic, Event(event_type, data, f"{head.epoch}-{seq}"))
            for seq, topic, event_type, data in rows[:limit]
        ]
        through = EventId(head.epoch, records[-1].seq) if len(rows) > limit else head
        return Page(records, through)

    def _advance(self, count: int) -> tuple[str, int]:
        """
        Add ``count`` to the sequence (caller is inside a transaction) and
        return the epoch and the new seq, starting an epoch if there is none.
        """
        states, topics, events = self._tables()
        state = states.filter(pk=1)
        # Two attempts: a process that started the epoch at the same time
        # wins the insert, and this one then finds its row.
        for _ in range(2):
            if state.update(seq=F("seq") + count):
                return state.values_list("epoch", "seq").get()
            try:
                with transaction.atomic(using=self.database):
                    events.all().delete()
                    topics.all().delete()
                    new = states.create(pk=1, epoch=secrets.token_hex(4), seq=count)
                    return new.epoch, new.seq
            except IntegrityError:
                continue
        raise BackendUnavailable(
            "The database history could not start an epoch: its state row kept changing."
        )
