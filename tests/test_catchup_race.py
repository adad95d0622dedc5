"""
Races between streams opening and the hub's history reader, with a history
whose calls take time (Redis) where the in-memory one answers at once.

- A stream that opens on a topic no stream of this process listened to,
  while a live read is in flight: the live read took the list of topics when
  it started and moves the cursor to the head as it was when its answer was
  taken, which with Redis may be later than the new stream's position (the
  read waits for a free connection of the pool). Events of the new topic in
  between end up behind the cursor without having been read for anyone.
- Streams that open at once on a hub that is not reading yet: each calls
  HistoryReader.start(), which moves the cursor to the head, so the last one
  to get its answer moves it past events not yet read for a stream that is
  already live. Seen in tests/test_scaling_redis.py's rolling restart (a
  reconnect to the restarted process got 43, 44, 47).
- A reconnect while the reader resets streams whose events were evicted
  before it read them: the head the reset resumes from was taken before the
  reconnect's own read, which went further; the reconnect must neither be
  sent back to that head nor get its events twice.
"""

import asyncio

from notifications.history import EventId, get_history
from notifications.hub import Hub
from notifications.publishing import apublish
from notifications.streams import event_stream
from notifications.testing import parse_stream

from .support import notifications_settings, wait_until


class GatedHistory:
    """
    The project's history, except that one read of ``topics`` waits for
    ``gate`` before it takes its answer, as a read queued for a Redis
    connection does; and so does each head() while ``heads`` holds gates.
    Each head() while ``answered_heads`` holds gates takes its answer, then
    waits: a reply in flight.
    """

    def __init__(self, inner):
        self.inner = inner
        self.topics: list[str] | None = None
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()
        self.heads: list[asyncio.Event] = []
        self.answered_heads: list[asyncio.Event] = []
        self.reads = 0

    async def head(self):
        if self.heads:
            await self.heads.pop(0).wait()
        head = await self.inner.head()
        if self.answered_heads:
            gate = self.answered_heads.pop(0)
            self.waiting.set()
            await gate.wait()
        return head

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def read(self, topics, after, limit):
        self.reads += 1
        if self.topics is not None and sorted(topics) == self.topics:
            self.topics = None
            self.waiting.set()
            await self.gate.wait()
        return await self.inner.read(topics, after, limit)


async def read_until_id(stream, event_id: str, timeout: float) -> bytes:
    """Return the frames ``stream`` sends until one carries ``event_id``, or ``timeout`` passes."""
    frames = b""
    deadline = asyncio.get_running_loop().time() + timeout
    for _ in range(100):
        try:
            async with asyncio.timeout_at(deadline):
                frames += await anext(stream)
        except TimeoutError:
            break
        if f"id: {event_id}\n".encode() in frames:
            break
    return frames


async def test_stream_on_a_new_topic_gets_events_published_while_a_live_read_was_in_flight():
    history = GatedHistory(get_history())
    hub = Hub(history=history, poll_interval=0.05)
    first = event_stream(["alpha"], None, hub=hub)
    await anext(first)
    # The next live read (of alpha only) waits before it takes its answer.
    history.topics = ["alpha"]
    hub.reader.request()
    await asyncio.wait_for(history.waiting.wait(), 5)

    second = event_stream(["beta"], None, hub=hub)
    # It opens now, or waits for the live read to finish.
    opening = asyncio.ensure_future(anext(second))
    await wait_until(lambda: hub.count == 2)
    early = await apublish("beta", "published while the live read was in flight")
    history.gate.set()
    try:
        opened = await asyncio.wait_for(opening, 5)
        position = EventId.parse(opened.split(b"id: ")[1].split(b"\n")[0].decode())
        late = await apublish("beta", "published after the live read")
        frames = await read_until_id(second, late, 3)
    finally:
        await first.aclose()
        await second.aclose()
        await hub.close()
    owed = [event_id for event_id in (early, late) if EventId.parse(event_id).seq > position.seq]
    received = [event_id for event_id in (early, late) if f"id: {event_id}\n".encode() in frames]
    assert received == owed, f"the stream opened at {position} got {received} of {owed}"


async def test_streams_opening_at_once_on_an_idle_hub_miss_no_event():
    history = GatedHistory(get_history())
    history.heads = [asyncio.Event(), asyncio.Event()]
    first_head, second_head = history.heads
    hub = Hub(history=history, poll_interval=0.05)
    first, second = event_stream(["alpha"], None, hub=hub), event_stream(["alpha"], None, hub=hub)
    # Both find the hub not reading yet; the first asks the history for its head.
    first_opening, second_opening = asyncio.ensure_future(anext(first)), asyncio.ensure_future(anext(second))
    await wait_until(lambda: hub.count == 2)
    first_head.set()
    try:
        await asyncio.wait_for(first_opening, 5)
        # The first stream is live; the second is still starting the reader.
        event_id = await apublish("alpha", "published once the first stream was live")
        second_head.set()
        await asyncio.wait_for(second_opening, 5)
        frames = await read_until_id(first, event_id, 3)
    finally:
        await first.aclose()
        await second.aclose()
        await hub.close()
    assert f"id: {event_id}\n".encode() in frames, f"the first stream never got {event_id}"


async def test_a_reset_of_the_live_streams_during_a_reconnect_neither_repeats_events_nor_goes_back():
    with notifications_settings(HISTORY_SIZE=5):
        inner = get_history()
        history = GatedHistory(inner)
        hub = Hub(history=history, poll_interval=60)
        first = event_stream(["alpha"], None, hub=hub)
        await anext(first)
        # Their announcements lost (a layer over capacity): the hub's cursor
        # is now behind what alpha's history still holds.
        ids = [(await inner.append("alpha", "alpha", str(n))).id for n in range(10)]
        # The hub reads, finds alpha evicted past its cursor and asks for the head...
        reply = asyncio.Event()
        history.answered_heads = [reply]
        hub.reader.request()
        await asyncio.wait_for(history.waiting.wait(), 5)
        # ... and while that answer is in flight two more events are stored
        # and a client reconnects with the 8th id (still in history).
        ids += [(await inner.append("alpha", "alpha", str(n))).id for n in (10, 11)]
        second = event_stream(["alpha"], ids[7], hub=hub)
        reads = history.reads
        opening = asyncio.ensure_future(read_until_id(second, "no such id", 0.5))
        # The reconnect read its page, and waits for the reader to join the live fan-out.
        await wait_until(lambda: history.reads > reads)
        reply.set()
        await wait_until(lambda: not hub.reader.lock.locked())
        hub.reader.request()  # The next wake-up or poll.
        try:
            frames = await opening
        finally:
            await first.aclose()
            await second.aclose()
            await hub.close()
    received = [frame.id for frame in parse_stream(frames) if frame.id]
    assert received == ids[8:], f"published {ids}"
