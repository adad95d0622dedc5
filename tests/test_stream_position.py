"""A new stream names the position it starts from, so an early reconnect misses nothing."""

from notifications.history import EventId, get_history
from notifications.hub import Hub
from notifications.publishing import apublish
from notifications.streams import event_stream
from notifications.testing import parse_stream

from .support import notifications_settings
from .test_catchup_race import read_until_id


async def first_frame(topics, last_event_id):
    stream = event_stream(topics, last_event_id)
    try:
        return await anext(stream)
    finally:
        await stream.aclose()


async def test_new_stream_starts_with_the_current_position_and_no_event():
    await apublish("announcement", {"n": 1})
    await apublish("beta", {"n": 2})
    head = str(await get_history().head())

    frame = await first_frame(["announcement"], None)

    assert frame == b"retry: 2000\n\n" + f"id: {head}\n\n".encode()


async def test_reconnecting_from_that_position_replays_what_was_published_since():
    await apublish("announcement", {"n": 1})
    position = (await first_frame(["announcement"], None)).split(b"id: ")[1].strip().decode()
    missed = await apublish("announcement", {"n": 2})

    frame = await first_frame(["announcement"], position)

    assert f'id: {missed}\nevent: announcement\ndata: {{"n":2}}\n\n'.encode() in frame
    assert b'"n":1' not in frame


async def test_a_burst_on_a_topic_nobody_here_listens_to_does_not_reset_a_stream_on_another():
    """
    More events of beta than the history keeps, while no stream here listens
    to beta, then a stream opens on beta: the stream on alpha missed nothing.
    """
    with notifications_settings(HISTORY_SIZE=5):
        hub = Hub(history=get_history(), poll_interval=60)
        alpha = event_stream(["alpha"], None, hub=hub)
        await anext(alpha)
        for n in range(10):
            await apublish("beta", {"n": n})
        beta = event_stream(["beta"], None, hub=hub)
        await anext(beta)
        next_on_alpha = await apublish("alpha", {"n": 10})
        try:
            frames = await read_until_id(alpha, next_on_alpha, 3)
        finally:
            await alpha.aclose()
            await beta.aclose()
            await hub.close()
    assert [(frame.event, frame.id) for frame in parse_stream(frames)] == [("alpha", next_on_alpha)]


async def test_a_new_stream_on_a_topic_evicted_while_nobody_here_listened_starts_after_it():
    with notifications_settings(HISTORY_SIZE=5):
        hub = Hub(history=get_history(), poll_interval=60)
        alpha = event_stream(["alpha"], None, hub=hub)
        await anext(alpha)
        burst = [await apublish("beta", {"n": n}) for n in range(10)]
        beta = event_stream(["beta"], None, hub=hub)
        try:
            opened = await anext(beta)
            next_on_beta = await apublish("beta", {"n": 10})
            frames = await read_until_id(beta, next_on_beta, 3)
        finally:
            await alpha.aclose()
            await beta.aclose()
            await hub.close()
    [position] = [frame.id for frame in parse_stream(opened) if frame.id]
    assert EventId.parse(position).seq >= EventId.parse(burst[-1]).seq, "it starts before what was evicted"
    assert [(frame.event, frame.id) for frame in parse_stream(frames)] == [("beta", next_on_beta)]
