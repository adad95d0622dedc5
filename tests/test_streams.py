"""
event_stream(): catch-up and live delivery meet without gaps or repeats.

An event is stored in history before the channel layer announces it, so a
stream that catches up while an announcement is in flight finds the event in
history and then hears of it again from the layer. These tests send such late
or repeated announcements through the real layer to the hub's channel.
"""

import json

from channels.layers import get_channel_layer

from notifications.encoding import encode_event
from notifications.history import EventId, get_history
from notifications.hub import get_hub
from notifications.protocol import HISTORY_UNAVAILABLE, layer_message, reset_frame
from notifications.streams import event_stream

from .support import notifications_settings, wait_until

RETRY = b"retry: 2000\n\n"


async def announce_again(*events) -> None:
    """Send the hub's channel the layer messages of ``events`` once more, as a late layer would."""
    channel = get_hub().subscription.channel
    for event in events:
        await get_channel_layer().send(channel, layer_message(event.type, event.id))


async def test_event_replayed_then_announced_late_by_the_layer_is_sent_once():
    history = get_history()
    resume_from = await history.append("alpha", "alpha", "1")
    in_flight = await history.append("alpha", "alpha", "2")
    stream = event_stream(["alpha"], resume_from.id)

    assert await anext(stream) == RETRY + encode_event(in_flight)
    newer = await history.append("alpha", "alpha", "3")
    await announce_again(in_flight, newer)

    assert await anext(stream) == encode_event(newer)
    await stream.aclose()


async def test_a_reconnect_with_nothing_to_replay_does_not_repeat_a_late_announcement():
    history = get_history()
    last_seen = await history.append("alpha", "alpha", "1")
    stream = event_stream(["alpha"], last_seen.id)

    assert await anext(stream) == RETRY
    await announce_again(last_seen)
    newer = await history.append("alpha", "alpha", "2")
    await announce_again(newer)

    assert await anext(stream) == encode_event(newer)
    await stream.aclose()


async def test_events_before_a_reset_that_are_announced_late_are_not_sent():
    history = get_history()
    in_flight = await history.append("alpha", "alpha", "1")
    stream = event_stream(["alpha"], "0ther-1")

    head = str(await history.head())
    reset = f"id: {head}\nevent: stream_reset\ndata: {json.dumps({'reason': 'history_unavailable'})}\n\n"
    assert await anext(stream) == RETRY + reset.encode()
    newer = await history.append("alpha", "alpha", "2")
    await announce_again(in_flight, newer)

    assert await anext(stream) == encode_event(newer)
    await stream.aclose()


async def test_events_evicted_before_the_hub_read_them_reset_only_the_streams_of_their_topic():
    with notifications_settings(HISTORY_SIZE=5):
        history = get_history()
        alpha, beta = event_stream(["alpha"], None), event_stream(["beta"], None)
        await anext(alpha)
        await anext(beta)
        # Stored, their announcements lost (a layer over capacity): evicted
        # before the hub reads them.
        for n in range(10):
            await history.append("alpha", "alpha", str(n))
        newer = await history.append("beta", "beta", "10")
        await announce_again(newer)

        # alpha resumes from the head the hub found.
        assert await anext(alpha) == reset_frame(HISTORY_UNAVAILABLE, EventId.parse(newer.id))
        assert await anext(beta) == encode_event(newer)
        assert get_hub().stats.open_streams_reset == 1
        await alpha.aclose()
        await beta.aclose()


async def test_a_malformed_layer_message_is_counted_and_delivery_goes_on():
    stream = event_stream(["alpha"], None)
    await anext(stream)
    hub = get_hub()
    await get_channel_layer().send(hub.subscription.channel, {"type": "notifications.event", "id": None})
    await wait_until(lambda: hub.stats.bad_layer_messages == 1)
    event = await get_history().append("alpha", "alpha", "1")
    await announce_again(event)

    assert await anext(stream) == encode_event(event)
    await stream.aclose()


async def test_closing_the_stream_unregisters_its_listener():
    stream = event_stream(["alpha", "beta"], None)
    await anext(stream)
    assert get_hub().count == 1

    await stream.aclose()

    assert get_hub().count == 0
    assert get_hub().listeners == {}
