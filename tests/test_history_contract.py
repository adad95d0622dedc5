"""
The contract of notifications/history/base.py, checked on every backend:
InMemoryHistory, RedisHistory (a real redis-server) and DatabaseHistory (the
test database). A backend that passes these can serve streams.

``make_history(size)`` builds a history the way another process would:
Redis and database ones share their store, in-memory ones share the
instance (it is one process's memory).
"""

import asyncio
import threading
import time

import pytest
from django.db import connection

from notifications.exceptions import BackendUnavailable
from notifications.history import EventId, memory
from notifications.history.database import DatabaseHistory
from notifications.history.memory import InMemoryHistory
from notifications.history.redis import RedisHistory

from .support import stored_events

TOPICS = ["a", "b", "user.7"]
# Storing an event of this topic fails inside the backend (see broken_topic).
BROKEN = "broken"


@pytest.fixture(
    params=["memory", "redis", pytest.param("database", marks=pytest.mark.django_db(transaction=True))]
)
def make_history(request):
    built = []
    if request.param == "memory":
        shared = {}

        def make(size):
            return shared.setdefault(size, InMemoryHistory(size))

    elif request.param == "redis":
        url = request.getfixturevalue("redis_server").url

        def make(size):
            return RedisHistory(size, url=url)

    else:

        def make(size):
            built.append(DatabaseHistory(size))
            return built[-1]

    make.backend = request.param
    yield make
    for history in built:
        asyncio.run(history.close())


class InjectedFailure(Exception):
    """The in-memory history's stand-in for a backend failing mid-write."""


@pytest.fixture
def broken_topic(make_history, request, monkeypatch):
    """
    Make storing an event of topic BROKEN fail inside the backend, the way a
    backend fails in the middle of a write: a database constraint, a Redis
    command error, an exception while building the in-memory record.
    """
    if make_history.backend == "memory":
        real_record = memory.Record

        def record(seq, topic, event):
            if topic == BROKEN:
                raise InjectedFailure(topic)
            return real_record(seq, topic, event)

        monkeypatch.setattr(memory, "Record", record)
        yield BROKEN
    elif make_history.backend == "redis":
        # A key of another type where the topic's stream goes: XADD fails.
        with request.getfixturevalue("redis_server").client() as client:
            client.set(f"notifications:stream:{BROKEN}", "not a stream")
        yield BROKEN
    else:
        # The suite's database is SQLite (tests/settings.py): a trigger of its own.
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TRIGGER refuse_broken BEFORE INSERT ON notifications_history_event "
                f"WHEN NEW.topic = '{BROKEN}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )
        yield BROKEN
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_broken")


async def append_all(history, topics: list[str]) -> list[tuple[int, str, str]]:
    """Append one event per entry of ``topics``; return (seq, topic, data) of each."""
    appended = []
    for n, topic in enumerate(topics):
        event = await history.append(topic, "announcement", f'{{"n":{n}}}')
        appended.append((EventId.parse(event.id).seq, topic, event.data))
    return appended


def as_tuples(page) -> list[tuple[int, str, str]]:
    return [(record.seq, record.topic, record.event.data) for record in page.records]


async def test_a_batch_gets_consecutive_seqs_in_order_and_keeps_size_per_topic(make_history):
    history = make_history(2)
    [(old_a, _, _), (old_b, _, _), (old_user, _, _)] = await append_all(history, ["a", "b", "user.7"])
    start = await history.head()
    topics = ["a", "b", "a", "a", "user.7", "a", "user.7"]
    items = [(topic, "announcement", f'{{"n":{n}}}') for n, topic in enumerate(topics)]

    events = await history.append_many(items)
    head = await history.head()

    seqs = [EventId.parse(event.id).seq for event in events]
    batch = [(seq, topic, data) for seq, (topic, _, data) in zip(seqs, items, strict=True)]
    assert seqs == list(range(start.seq + 1, start.seq + 8)) and head.seq == seqs[-1]
    assert [(event.type, event.data) for event in events] == [(t, d) for _, t, d in items]
    # a: the old event and the batch's first two are evicted, the newest two kept.
    assert await history.read(["a"], EventId(head.epoch, seqs[2] - 1), 10) is None
    assert as_tuples(await history.read(["a"], EventId(head.epoch, seqs[2]), 10)) == [batch[3], batch[5]]
    # b: the old event and the batch's one fit; user.7: the old one is evicted.
    assert as_tuples(await history.read(["b"], EventId(head.epoch, old_b - 1), 10)) == [
        (old_b, "b", '{"n":1}'),
        batch[1],
    ]
    assert await history.read(["user.7"], EventId(head.epoch, old_user - 1), 10) is None
    assert as_tuples(await history.read(["user.7"], EventId(head.epoch, old_user), 10)) == [
        batch[4],
        batch[6],
    ]
    assert old_a < old_b < old_user


@pytest.mark.parametrize(
    "before, after",
    # The second event of a batch fails; and the last of a batch larger than
    # the 500-event chunks RedisHistory once wrote with one script each.
    [(1, 1), (599, 0)],
    ids=["second-of-3", "last-of-600"],
)
async def test_a_batch_that_fails_midway_stores_nothing_and_uses_no_seq(
    make_history, broken_topic, before, after
):
    """README: a publish is refused with nothing stored, or accepted; never reported failed and delivered."""
    history = make_history(1000)
    await history.append("a", "announcement", "{}")
    start = await history.head()
    items = [(TOPICS[n % 3], "announcement", f'{{"n":{n}}}') for n in range(before)]
    items += [(broken_topic, "announcement", "{}")]
    items += [("b", "announcement", f'{{"n":{n}}}') for n in range(after)]

    with pytest.raises((BackendUnavailable, InjectedFailure)):
        await history.append_many(items)

    assert await history.head() == start
    assert await stored_events(history, TOPICS, start) == []
    # The history still works, and the failed batch left no gap in the seqs.
    event = await history.append("a", "announcement", "{}")
    assert EventId.parse(event.id) == EventId(start.epoch, start.seq + 1)


async def test_seqs_grow_by_one_across_topics_and_head_is_the_last(make_history):
    history = make_history(10)
    appended = await append_all(history, ["a", "b", "a", "user.7", "b"])
    head = await history.head()

    seqs = [seq for seq, _, _ in appended]
    assert seqs == list(range(seqs[0], seqs[0] + 5))
    assert head.seq == seqs[-1]


async def test_read_returns_exactly_the_later_events_of_those_topics_in_seq_order(make_history):
    history = make_history(10)
    appended = await append_all(history, ["a", "b", "a", "user.7", "b", "a", "user.7"])
    head = await history.head()

    for after in range(0, head.seq + 1):
        for topics in (["a"], ["b", "a"], TOPICS, ["user.7", "never"]):
            page = await history.read(topics, EventId(head.epoch, after), 100)
            assert as_tuples(page) == [item for item in appended if item[0] > after and item[1] in topics]
            assert page.through == head
    record = (await history.read(["b"], EventId(head.epoch, 0), 1)).records[0]
    assert (record.event.type, record.event.id) == ("announcement", f"{head.epoch}-{record.seq}")


async def test_limit_cuts_the_page_and_through_is_its_last_record(make_history):
    history = make_history(10)
    appended = await append_all(history, ["a", "b", "a", "b", "a"])
    head = await history.head()

    first = await history.read(["a", "b"], EventId(head.epoch, 0), 2)
    rest = await history.read(["a", "b"], first.through, 2)
    last = await history.read(["a", "b"], rest.through, 2)

    assert as_tuples(first) == appended[:2] and first.through == EventId(head.epoch, appended[1][0])
    assert as_tuples(rest) == appended[2:4] and rest.through == EventId(head.epoch, appended[3][0])
    assert as_tuples(last) == appended[4:] and last.through == head


async def test_a_page_not_cut_is_complete_up_to_the_head(make_history):
    history = make_history(10)
    await append_all(history, ["a", "b", "b"])
    head = await history.head()

    only_a = await history.read(["a"], EventId(head.epoch, 1), 10)
    exactly_full = await history.read(["b"], EventId(head.epoch, 0), 2)
    at_head = await history.read(TOPICS, head, 10)

    assert (only_a.records, only_a.through) == ([], head)
    assert len(exactly_full.records) == 2 and exactly_full.through == head
    assert (at_head.records, at_head.through) == ([], head)


async def test_read_is_refused_only_when_an_event_after_the_position_was_evicted(make_history):
    history = make_history(2)
    appended = await append_all(history, ["a", "a", "a", "b"])  # a's first is evicted
    epoch = (await history.head()).epoch
    first = appended[0][0]

    assert await history.read(["a"], EventId(epoch, first - 1), 10) is None
    assert await history.read(["b", "a"], EventId(epoch, first - 1), 10) is None
    assert as_tuples(await history.read(["a"], EventId(epoch, first), 10)) == appended[1:3]
    assert as_tuples(await history.read(["b"], EventId(epoch, first - 1), 10)) == appended[3:]


async def test_a_history_of_size_zero_keeps_nothing_and_says_so(make_history):
    history = make_history(0)
    await append_all(history, ["a", "b"])
    head = await history.head()

    assert await history.read(["a"], EventId(head.epoch, head.seq - 2), 10) is None
    assert as_tuples(await history.read(["a", "b"], head, 10)) == []


async def test_a_position_of_another_epoch_or_ahead_of_the_head_is_refused(make_history):
    history = make_history(5)
    await append_all(history, ["a", "b"])
    head = await history.head()

    assert await history.read(["a"], EventId("0ther", 1), 10) is None
    assert await history.read(["a"], EventId(head.epoch, head.seq + 1), 10) is None


async def test_concurrent_appends_never_make_an_event_readable_before_a_lower_one(make_history):
    writers, per_writer = 4, 40
    reader = make_history(1000)
    epoch = (await reader.head()).epoch
    start = (await reader.head()).seq
    errors = []

    def write(n: int) -> None:
        # Its own thread and event loop, like another process or a sync publish().
        history = make_history(1000)

        async def run():
            for i in range(per_writer):
                await history.append(TOPICS[(n + i) % 3], "announcement", str(i))
            await history.close()

        try:
            asyncio.run(run())
        except Exception as exc:  # reported by the test below, not lost in the thread
            errors.append(exc)

    async def task_writer(n: int) -> None:
        for i in range(per_writer):
            await reader.append(TOPICS[(n + i) % 3], "announcement", str(i))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    tasks = asyncio.gather(*(task_writer(n) for n in range(writers)))
    total = 2 * writers * per_writer
    deadline = time.monotonic() + 60
    reads = 0
    while time.monotonic() < deadline:
        page = await reader.read(TOPICS, EventId(epoch, start), 10_000)
        reads += 1
        # Whatever is readable is a prefix of the log: no seq without the ones before.
        assert [record.seq for record in page.records] == list(range(start + 1, page.through.seq + 1))
        if page.through.seq - start == total:
            break
        await asyncio.sleep(0)
    await tasks
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert (await reader.head()).seq - start == total
    assert reads > 1


@pytest.mark.django_db(transaction=True)
async def test_database_history_keeps_its_epoch_and_events_across_instances():
    before = DatabaseHistory(10)
    event = await before.append("a", "announcement", "{}")
    await before.close()
    # A restarted process builds a new instance on the same database.
    after = DatabaseHistory(10)

    page = await after.read(["a"], EventId(EventId.parse(event.id).epoch, 0), 10)

    assert [record.event for record in page.records] == [event]
    assert str(await after.head()) == event.id
    await after.close()


@pytest.mark.django_db(transaction=True)
async def test_database_history_starts_a_new_epoch_when_its_state_is_gone():
    from notifications.models import HistoryState

    history = DatabaseHistory(10)
    old = EventId.parse((await history.append("a", "announcement", "{}")).id)
    await HistoryState.objects.all().adelete()

    new = EventId.parse((await history.append("a", "announcement", "{}")).id)

    assert new.epoch != old.epoch and new.seq == 1
    assert await history.read(["a"], old, 10) is None
    assert [record.seq for record in (await history.read(["a"], EventId(new.epoch, 0), 10)).records] == [1]
    await history.close()
