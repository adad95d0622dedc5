"""
Heartbeats: comments by default; ``keepalive`` events for a client that asks
with ``?keepalive=event`` (EventSource shows pages events, never comments).
"""

import json

import pytest

from notifications.history import get_history
from notifications.protocol import KEEPALIVE
from notifications.publishing import apublish
from notifications.testing import parse_stream

from .support import get, notifications_settings

# Requests end with Django's close_old_connections, which touches the database.
pytestmark = pytest.mark.django_db

KEEPALIVE_FRAME = b"event: keepalive\ndata: {}\n\n"


def heartbeats(count: int):
    """Read a stream until ``count`` heartbeats of either kind follow its opening frames."""
    return lambda body: body.count(b":\n\n") + body.count(KEEPALIVE_FRAME) > count


async def test_idle_stream_sends_comments_by_default():
    with notifications_settings(HEARTBEAT=0.05):
        response = await get("/sse/subscribe/announcement/", until=heartbeats(1))

    assert response.status == 200
    assert KEEPALIVE.encode() not in response.body
    assert response.body.count(b":\n\n") >= 2
    assert [frame.event for frame in parse_stream(response.body) if frame.data] == []


async def test_keepalive_event_stream_opens_with_a_keepalive_that_follows_the_position():
    await apublish("announcement", {"n": 1})
    head = str(await get_history().head())

    response = await get("/sse/subscribe/announcement/", query_string=b"keepalive=event")

    assert response.body == f"retry: 2000\n\nid: {head}\n\n".encode() + KEEPALIVE_FRAME
    # As a browser parses it: the position is recorded without an event, then
    # the keepalive fires; its lastEventId is the position.
    position, keepalive = parse_stream(response.body)[1:]
    assert (position.id, position.data) == (head, "")
    assert (keepalive.event, keepalive.id, json.loads(keepalive.data)) == (KEEPALIVE, None, {})


async def test_idle_keepalive_event_stream_sends_keepalive_events_and_no_comments():
    with notifications_settings(HEARTBEAT=0.05):
        response = await get(
            "/sse/subscribe/announcement/", query_string=b"keepalive=event", until=heartbeats(2)
        )

    assert b"\n:" not in response.body and not response.body.startswith(b":")
    assert response.body.count(KEEPALIVE_FRAME) >= 3


async def test_resumed_keepalive_event_stream_replays_then_sends_a_keepalive():
    first = await apublish("announcement", {"n": 1})
    missed = await apublish("announcement", {"n": 2})

    response = await get(
        "/sse/subscribe/",
        query_string=f"types=announcement&keepalive=event&lastEventId={first}".encode(),
        until=lambda body: KEEPALIVE_FRAME in body,
    )

    frames = parse_stream(response.body)
    assert [(frame.event, frame.id) for frame in frames[1:]] == [("announcement", missed), (KEEPALIVE, None)]


@pytest.mark.parametrize("value", ["comment", "", "EVENT"])
async def test_unknown_keepalive_value_is_refused_with_the_valid_form(value):
    response = await get("/sse/subscribe/announcement/", query_string=f"keepalive={value}".encode())

    assert response.status == 400
    assert response.body.decode() == (
        f"keepalive={value!r} is not valid. Use keepalive=event, or leave it out for comments.\n"
    )
