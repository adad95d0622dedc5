"""
event_stream(): catch-up and live delivery meet without gaps or repeats.

An event is stored in history before the channel layer carries it, so a
stream that catches up while an event is in flight finds it in history and
then receives it again from the layer. These tests hand such late layer
messages to the hub directly, as its receive loop would.
"""

import json

from notifications.encoding import encode_event
from notifications.history import get_history
from notifications.hub import get_hub
from notifications.streams import event_stream

RETRY = b"retry: 2000\n\n"


def arrive_from_layer(*events) -> None:
    for event in events:
        get_hub().dispatch(
            {"topic": event.type, "event_type": event.type, "id": event.id, "data": event.data}
        )


async def test_event_replayed_then_delivered_late_by_the_layer_is_sent_once():
    history = get_history()
    resume_from = await history.append("alpha", "alpha", "1")
    in_flight = await history.append("alpha", "alpha", "2")
    stream = event_stream(["alpha"], resume_from.id)

    assert await anext(stream) == RETRY + encode_event(in_flight)
    newer = await history.append("alpha", "alpha", "3")
    arrive_from_layer(in_flight, newer)

    assert await anext(stream) == encode_event(newer)
    await stream.aclose()


async def test_events_before_a_reset_that_arrive_late_are_not_sent():
    history = get_history()
    in_flight = await history.append("alpha", "alpha", "1")
    stream = event_stream(["alpha"], "0ther-1")

    head = str(await history.head())
    reset = f"id: {head}\nevent: stream_reset\ndata: {json.dumps({'reason': 'history_unavailable'})}\n\n"
    assert await anext(stream) == RETRY + reset.encode()
    newer = await history.append("alpha", "alpha", "2")
    arrive_from_layer(in_flight, newer)

    assert await anext(stream) == encode_event(newer)
    await stream.aclose()


async def test_closing_the_stream_unregisters_its_listener():
    stream = event_stream(["alpha", "beta"], None)
    await anext(stream)
    assert get_hub().count == 1

    await stream.aclose()

    assert get_hub().count == 0
    assert get_hub().listeners == {}
