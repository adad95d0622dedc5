"""A new stream names the position it starts from, so an early reconnect misses nothing."""

from notifications.history import get_history
from notifications.publishing import apublish
from notifications.streams import event_stream


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
