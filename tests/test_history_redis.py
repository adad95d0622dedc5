"""
RedisHistory against a real redis-server. The contract tests run on the
in-memory history too: both backends must answer the same.
"""

import asyncio
import threading

import pytest

from notifications.exceptions import BackendUnavailable, PayloadError
from notifications.history import EventId
from notifications.history.memory import InMemoryHistory
from notifications.history.redis import RedisHistory

from .support import stored_events


@pytest.fixture(params=["memory", "redis"])
def make_history(request):
    """Build histories of either backend; Redis ones share one server, like processes do."""
    if request.param == "memory":
        return lambda size: InMemoryHistory(size)
    url = request.getfixturevalue("redis_server").url
    return lambda size: RedisHistory(size, url=url)


def seqs(events) -> list[int]:
    return [EventId.parse(event.id).seq for event in events]


async def test_ids_grow_across_topics_and_replay_merges_topics_in_order(make_history):
    history = make_history(10)
    ids = [(await history.append(topic, "announcement", f'{{"n":{n}}}')).id for n, topic in enumerate("abab")]
    head = await history.head()

    assert [EventId.parse(event_id).seq for event_id in ids] == [1, 2, 3, 4]
    assert str(head) == ids[-1]
    assert [event.id for event in await stored_events(history, ["a", "b"], EventId(head.epoch, 1))] == ids[1:]
    assert [event.data for event in await stored_events(history, ["b"], EventId(head.epoch, 0))] == [
        '{"n":1}',
        '{"n":3}',
    ]
    assert await stored_events(history, ["a"], head) == []


async def test_replay_is_refused_only_when_a_needed_event_was_evicted(make_history):
    history = make_history(2)
    for n in range(3):
        await history.append("a", "announcement", str(n))  # seq 1, 2, 3: 1 is evicted
    await history.append("b", "announcement", "other")  # seq 4
    epoch = (await history.head()).epoch

    assert await stored_events(history, ["a"], EventId(epoch, 0)) is None
    assert seqs(await stored_events(history, ["a"], EventId(epoch, 1))) == [2, 3]
    assert seqs(await stored_events(history, ["a", "b"], EventId(epoch, 1))) == [2, 3, 4]
    assert await stored_events(history, ["b", "a"], EventId(epoch, 0)) is None


async def test_ids_from_another_epoch_or_the_future_cannot_be_replayed(make_history):
    history = make_history(5)
    head = EventId.parse((await history.append("a", "announcement", "1")).id)

    assert await stored_events(history, ["a"], EventId("0ther", 0)) is None
    assert await stored_events(history, ["a"], EventId(head.epoch, head.seq + 1)) is None


async def test_size_zero_keeps_nothing_to_replay(make_history):
    history = make_history(0)
    first = EventId.parse((await history.append("a", "announcement", "1")).id)
    await history.append("a", "announcement", "2")

    assert await stored_events(history, ["a"], first) is None
    assert await stored_events(history, ["b"], first) == []


async def test_data_round_trips_unchanged(make_history):
    history = make_history(5)
    data = '{"text":"line one\\nline two","emoji":"\u00e9\U0001f600"}'
    event = await history.append("a", "task_progress", data)
    [replayed] = await stored_events(history, ["a"], EventId(EventId.parse(event.id).epoch, 0))
    assert replayed == event
    assert (replayed.type, replayed.data) == ("task_progress", data)


async def test_processes_share_one_epoch_and_one_sequence(redis_server):
    web, worker = RedisHistory(100, url=redis_server.url), RedisHistory(100, url=redis_server.url)
    appended = await asyncio.gather(
        *(
            history.append(topic, "announcement", "x")
            for history in (web, worker)
            for topic in ("a", "b") * 50
        )
    )
    ids = [EventId.parse(event.id) for event in appended]

    assert len({event_id.epoch for event_id in ids}) == 1
    assert sorted(event_id.seq for event_id in ids) == list(range(1, 201)), "no seq twice, none skipped"
    start = EventId(ids[0].epoch, 0)
    from_web = await stored_events(web, ["a", "b"], start)
    assert from_web == await stored_events(worker, ["a", "b"], start)
    assert seqs(from_web) == list(range(1, 201))


async def test_a_flushed_redis_starts_a_new_epoch_and_forgets_the_old_one(redis_server):
    history = RedisHistory(10, url=redis_server.url)
    old = EventId.parse((await history.append("a", "announcement", "old")).id)
    with redis_server.client() as client:
        client.flushall()

    new = EventId.parse((await history.append("a", "announcement", "new")).id)

    assert new.epoch != old.epoch
    assert new.seq == 1
    assert await stored_events(history, ["a"], old) is None
    assert [event.data for event in await stored_events(history, ["a"], EventId(new.epoch, 0))] == ["new"]


async def test_lost_state_starts_a_new_epoch_without_ghosts_of_the_old_one(redis_server):
    history = RedisHistory(10, url=redis_server.url)
    for n in range(3):
        await history.append("a", "announcement", f"old {n}")
    with redis_server.client() as client:
        client.delete("notifications:state")  # as if evicted by a maxmemory policy

    new = EventId.parse((await history.append("a", "announcement", "new")).id)

    assert [event.data for event in await stored_events(history, ["a"], EventId(new.epoch, 0))] == ["new"]


async def test_a_batch_over_max_batch_is_refused_before_redis_is_asked(redis_server, monkeypatch):
    history = RedisHistory(10, url=redis_server.url)
    start = await history.head()
    monkeypatch.setattr("notifications.history.redis.MAX_BATCH", 3)
    items = [("a", "announcement", str(n)) for n in range(4)]

    with pytest.raises(PayloadError, match=r"^4 events in one call; RedisHistory stores at most 3 at once\."):
        await history.append_many(items)
    three = await history.append_many(items[:3])

    assert seqs(three) == [start.seq + 1, start.seq + 2, start.seq + 3]
    await history.close()


async def test_a_stream_already_holding_the_next_ids_refuses_the_whole_batch(redis_server):
    history = RedisHistory(10, url=redis_server.url)
    start = EventId.parse((await history.append("a", "announcement", "1")).id)
    # What a stream left over from another history would hold: ids ahead of the sequence.
    with redis_server.client() as client:
        client.xadd("notifications:stream:b", {"type": "announcement", "data": "stray"}, id="5-0")

    with pytest.raises(BackendUnavailable, match="notifications:stream:b already holds ids from seq 2"):
        await history.append_many([("a", "announcement", "2"), ("b", "announcement", "3")])

    assert await history.head() == start
    assert await stored_events(history, ["a"], start) == []
    await history.close()


async def test_prefixes_keep_histories_apart(redis_server):
    first = RedisHistory(10, url=redis_server.url, prefix="site-one")
    second = RedisHistory(10, url=redis_server.url, prefix="site-two")
    one = EventId.parse((await first.append("a", "announcement", "1")).id)
    two = EventId.parse((await second.append("a", "announcement", "2")).id)

    assert one.epoch != two.epoch
    assert one.seq == two.seq == 1
    assert [event.data for event in await stored_events(second, ["a"], EventId(two.epoch, 0))] == ["2"]


async def test_unreachable_redis_raises_one_clear_sentence_without_the_password(redis_server):
    url = f"redis://:s3cret@127.0.0.1:{redis_server.port}/0"
    redis_server.stop()
    history = RedisHistory(10, url=url, timeout=1)

    with pytest.raises(BackendUnavailable) as raised:
        await history.append("a", "announcement", "1")
    message = str(raised.value)
    assert message.startswith(
        f"The Redis history at 'redis://:***@127.0.0.1:{redis_server.port}/0' is unavailable: "
    )
    assert message.endswith(".") and not message.endswith("..")
    assert "s3cret" not in message
    with pytest.raises(BackendUnavailable):
        await history.head()


async def test_hundreds_of_concurrent_reads_wait_for_the_bounded_pool(redis_server):
    history = RedisHistory(1000, url=redis_server.url, max_connections=4)
    for n in range(50):
        await history.append("a", "announcement", str(n))
    start = EventId((await history.head()).epoch, 0)
    peak, reading = [], threading.Event()

    def watch_connections():
        while not reading.is_set():
            peak.append(redis_server.connected_clients())

    watcher = threading.Thread(target=watch_connections)
    watcher.start()
    try:
        results = await asyncio.gather(*(stored_events(history, ["a"], start) for _ in range(500)))
    finally:
        reading.set()
        watcher.join(10)

    assert all(seqs(result) == list(range(1, 51)) for result in results)
    print(f"500 concurrent reads: at most {max(peak)} connections, {len(peak)} samples")
    assert 0 < max(peak) <= 4


def test_each_event_loop_gets_a_client_that_closes_with_the_loop(redis_server):
    history = RedisHistory(10, url=redis_server.url)
    # As sync publish() does through async_to_sync: one new loop per call.
    ids = [asyncio.run(history.append("a", "announcement", str(n))).id for n in range(3)]

    assert [EventId.parse(event_id).seq for event_id in ids] == [1, 2, 3]
    assert redis_server.connected_clients() == 0, "each loop's connections were closed with it"


def test_invalid_options_are_refused_with_a_sentence():
    with pytest.raises(
        ValueError, match=r"^RedisHistory option 'max_connections' must be a positive integer, not 0\.$"
    ):
        RedisHistory(10, max_connections=0)
    with pytest.raises(ValueError, match=r"^RedisHistory option 'timeout' must be a positive number"):
        RedisHistory(10, timeout=-1)
    with pytest.raises(ValueError, match=r"^RedisHistory option 'prefix' must be a non-empty string"):
        RedisHistory(10, prefix="my site")
