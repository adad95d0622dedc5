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

from notifications.history import EventId
from notifications.history.database import DatabaseHistory
from notifications.history.memory import InMemoryHistory
from notifications.history.redis import RedisHistory

TOPICS = ["a", "b", "user.7"]


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

    yield make
    for history in built:
        asyncio.run(history.close())


async def append_all(history, topics: list[str]) -> list[tuple[int, str, str]]:
    """Append one event per entry of ``topics``; return (seq, topic, data) of each."""
    appended = []
    for n, topic in enumerate(topics):
        event = await history.append(topic, "announcement", f'{{"n":{n}}}')
        appended.append((EventId.parse(event.id).seq, topic, event.data))
    return appended


def as_tuples(page) -> list[tuple[int, str, str]]:
    return [(record.seq, record.topic, record.event.data) for record in page.records]


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
