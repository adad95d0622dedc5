"""
The hub on a real channels_redis layer and RedisHistory: Redis going away,
coming back with or without its data, or being flushed under open streams.

Streams are driven in this process through streams.event_stream, the body
every subscribe response iterates.
"""

import asyncio
import time

import pytest

from notifications import apublish, subscription
from notifications.exceptions import BackendUnavailable
from notifications.history import EventId
from notifications.hub import get_hub
from notifications.protocol import STREAM_RESET
from notifications.streams import event_stream
from notifications.testing import SSEClient

from .redis_server import RedisServer, use_redis


class Stream:
    """One stream body, read frame by frame and parsed like a browser would."""

    def __init__(self, topics: list[str], last_event_id: str | None = None):
        self.body = event_stream(topics, last_event_id)
        self.parsed = SSEClient("127.0.0.1", 0, "/")
        self.ended = False
        self._next: asyncio.Task | None = None

    async def read_until(self, predicate, timeout: float) -> bool:
        """Read frames until ``predicate(self.parsed)`` holds, the body ends, or ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate(self.parsed) and not self.ended and time.monotonic() < deadline:
            if self._next is None:
                self._next = asyncio.ensure_future(anext(self.body))
            done, _ = await asyncio.wait([self._next], timeout=deadline - time.monotonic())
            if not done:
                break
            task, self._next = self._next, None
            try:
                self.parsed.feed(task.result())
            except StopAsyncIteration:
                self.ended = True
        return predicate(self.parsed)

    def ids(self, event_type: str = "announcement") -> list[str]:
        return [event.id for event in self.parsed.of_type(event_type)]

    async def close(self) -> None:
        if self._next is not None:
            self._next.cancel()
        await self.body.aclose()


async def open_stream(topics: list[str], last_event_id: str | None = None) -> Stream:
    stream = Stream(topics, last_event_id)
    assert await stream.read_until(lambda parsed: parsed.retry is not None, 5)
    return stream


async def publish_when_back(count: int, timeout: float = 10) -> list[str]:
    """Publish ``count`` events, retrying each while Redis is still unreachable."""
    ids, deadline = [], time.monotonic() + timeout
    while len(ids) < count:
        try:
            ids.append(await apublish("announcement", {"n": len(ids)}))
        except BackendUnavailable:
            assert time.monotonic() < deadline, "Redis did not come back"
            await asyncio.sleep(0.05)
    return ids


@pytest.fixture
def persistent_redis_settings(settings, tmp_path):
    server = RedisServer(tmp_path / "redis-aof", persistent=True).start()
    use_redis(settings, server.url, HEARTBEAT=0.2)
    yield server
    server.stop()


async def test_restart_with_persistence_keeps_streams_and_loses_nothing(persistent_redis_settings):
    redis_server = persistent_redis_settings
    before = [await apublish("announcement", {"n": n}) for n in range(3)]
    stream = await open_stream(["announcement"], before[0])
    assert await stream.read_until(lambda parsed: len(parsed.events) == 2, 5)

    redis_server.stop()
    comments = stream.parsed.comments
    with pytest.raises(BackendUnavailable, match=r"^The Redis history at '.+' is unavailable: .+\.$"):
        await apublish("announcement", {"during": "outage"})
    assert await stream.read_until(lambda parsed: parsed.comments >= comments + 3, 5), "heartbeats go on"
    redis_server.start()
    after = await publish_when_back(3)

    assert await stream.read_until(lambda parsed: len(parsed.of_type("announcement")) == 5, 10)
    assert stream.ids() == before[1:] + after
    assert stream.parsed.of_type(STREAM_RESET) == []
    assert not stream.ended
    await stream.close()


async def test_restart_without_persistence_resets_open_streams_then_delivers(redis_settings, redis_server):
    before = [await apublish("announcement", {"n": n}) for n in range(3)]
    # A stream that caught up through a replay has skipped frames up to seq 3.
    stream = await open_stream(["announcement"], before[0])
    assert await stream.read_until(lambda parsed: len(parsed.events) == 2, 5)

    redis_server.restart(down_for=0.3)

    assert await stream.read_until(lambda parsed: parsed.of_type(STREAM_RESET), 10), "the stream is reset"
    reset = stream.parsed.of_type(STREAM_RESET)[0]
    assert reset.json() == {"reason": "history_unavailable"}
    assert EventId.parse(reset.id).epoch != EventId.parse(before[0]).epoch
    after = await publish_when_back(3)
    assert await stream.read_until(lambda parsed: len(parsed.of_type("announcement")) == 5, 10), (
        stream.parsed.events
    )
    assert stream.ids() == before[1:] + after
    assert [EventId.parse(event_id).seq for event_id in after] == [1, 2, 3], "a new epoch starts at 1"
    assert not stream.ended
    await stream.close()


async def test_flushed_history_with_a_live_layer_resets_streams_once(settings, redis_server):
    # History and layer in different databases: only the history is flushed,
    # so the hub learns of the new epoch from the events themselves.
    use_redis(settings, redis_server.url, history_url=redis_server.url.replace("/0", "/1"))
    stream = await open_stream(["announcement"])
    before = [await apublish("announcement", {"n": n}) for n in range(2)]
    assert await stream.read_until(lambda parsed: len(parsed.of_type("announcement")) == 2, 5)

    with redis_server.client() as client:
        client.select(1)
        client.flushdb()
    first = await apublish("announcement", {"n": "first of the new epoch"})
    assert await stream.read_until(lambda parsed: parsed.of_type(STREAM_RESET), 5)
    after = [await apublish("announcement", {"n": n}) for n in range(2)]
    assert await stream.read_until(lambda parsed: parsed.last_event_id == after[-1], 5)

    reset = stream.parsed.of_type(STREAM_RESET)
    assert len(reset) == 1
    assert EventId.parse(reset[0].id) >= EventId.parse(first), "the reset covers the event that revealed it"
    assert stream.ids() == before + after or stream.ids() == before + [first] + after
    await stream.close()


async def test_membership_lost_without_an_error_is_restored_by_the_periodic_resync(
    redis_settings, redis_server, monkeypatch
):
    monkeypatch.setattr(subscription, "REFRESH_INTERVAL", 0.3)
    stream = await open_stream(["announcement"])
    before = await apublish("announcement", {"n": 0})
    assert await stream.read_until(lambda parsed: len(parsed.of_type("announcement")) == 1, 5)

    # FLUSHALL drops group membership and history without breaking a
    # connection: nothing tells the hub except its periodic resync.
    with redis_server.client() as client:
        client.flushall()
    assert await stream.read_until(lambda parsed: parsed.of_type(STREAM_RESET), 5)
    after = [await apublish("announcement", {"n": n}) for n in range(2)]

    assert await stream.read_until(lambda parsed: len(parsed.of_type("announcement")) == 3, 5)
    assert stream.ids() == [before, *after]
    await stream.close()


async def test_the_poll_delivers_events_the_layer_lost(redis_settings, redis_server):
    stream = await open_stream(["announcement"])
    hub = get_hub()
    # Take this process out of the group behind the hub's back: the layer
    # delivers nothing, the history still has everything.
    await hub.subscription.layer.group_discard("notifications.announcement", hub.subscription.channel)
    ids = [await apublish("announcement", {"n": n}) for n in range(3)]

    assert await stream.read_until(lambda parsed: len(parsed.of_type("announcement")) == 3, 5)
    later = await apublish("announcement", {"n": 3})
    assert await stream.read_until(lambda parsed: len(parsed.of_type("announcement")) == 4, 5)
    assert stream.ids() == [*ids, later], "each event once, in order"
    assert stream.parsed.of_type(STREAM_RESET) == []
    await stream.close()


async def test_stream_opened_while_redis_is_down_ends_cleanly_with_retry(redis_settings, redis_server):
    first = await apublish("announcement", {"n": 0})
    redis_server.stop()

    stream = Stream(["announcement"], first)
    assert await stream.read_until(lambda parsed: False, 5) is False
    assert stream.ended, "the body ends instead of hanging or raising"
    assert stream.parsed.retry == 2000
    assert stream.parsed.events == []
    assert get_hub().count == 0


async def test_an_announcement_after_a_lost_one_delivers_both_in_order(redis_settings):
    stream = await open_stream(["announcement"])
    hub = get_hub()
    layer, channel = hub.subscription.layer, hub.subscription.channel
    await layer.group_discard("notifications.announcement", channel)
    lost = await apublish("announcement", {"n": "lost"})
    await layer.group_add("notifications.announcement", channel)
    later = await apublish("announcement", {"n": "later"})

    assert await stream.read_until(lambda parsed: parsed.last_event_id == later, 5)
    assert stream.ids() == [lost, later], "the lost event comes from history, once, in order"
    await stream.close()
