"""The subscribe view, driven through the project's real ASGI application."""

import asyncio
import json

import pytest
from channels.layers import get_channel_layer
from django.conf import settings

from notifications import apublish
from notifications.history import get_history
from notifications.hub import get_hub
from notifications.lifecycle import drain
from notifications.protocol import EVERY_HUB_GROUP
from notifications.topics import group_name

from .asgi_client import event_ids
from .support import notifications_settings, wait_until

RETRY = b"retry: 2000\n\n"


def frame(event_id: str, event_type: str, data: str) -> bytes:
    return f"id: {event_id}\nevent: {event_type}\ndata: {data}\n\n".encode()


def reset_frame(head_id: str, reason: str) -> bytes:
    return frame(head_id, "stream_reset", json.dumps({"reason": reason}))


async def open_stream(asgi, path: str, **options):
    """Open a stream and read up to its first frame, when it is registered in the hub."""
    stream = await asgi(path, **options).start()
    first = await stream.body()
    assert first.startswith(RETRY), first
    return stream, first


async def test_stream_headers_allow_no_buffering_or_compression(asgi):
    stream = await asgi("/sse/subscribe/alpha/", headers={"Accept-Encoding": "gzip"}).start()

    assert stream.status == 200
    assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.headers["x-accel-buffering"] == "no"
    assert "content-encoding" not in stream.headers
    assert "content-length" not in stream.headers


def position(event_id) -> bytes:
    return f"id: {event_id}\n\n".encode()


async def test_first_frame_sets_the_reconnection_delay_and_the_position(asgi):
    await apublish("alpha", 1)
    head = await get_history().head()

    stream = await asgi("/sse/subscribe/alpha/").start()

    assert await stream.body() == RETRY + position(head)


async def test_retry_follows_the_setting(asgi):
    with notifications_settings(RETRY_MS=750):
        stream = await asgi("/sse/subscribe/alpha/").start()

        assert await stream.body() == b"retry: 750\n\n" + position(await get_history().head())


async def test_published_event_arrives_as_one_frame_with_id_event_and_data(asgi):
    stream, _ = await open_stream(asgi, "/sse/subscribe/alpha/")

    event_id = await apublish("alpha", {"text": "line one\nline two", "n": 1})

    assert await stream.body() == frame(event_id, "alpha", '{"text":"line one\\nline two","n":1}')


async def test_each_published_event_arrives_in_order(asgi):
    stream, _ = await open_stream(asgi, "/sse/subscribe/alpha/")

    ids = [await apublish("alpha", n) for n in range(5)]

    assert await stream.frames(5) == [frame(event_id, "alpha", str(n)) for n, event_id in enumerate(ids)]


async def test_one_connection_streams_several_types(asgi):
    stream, _ = await open_stream(asgi, "/sse/subscribe/?types=alpha,beta")

    alpha = await apublish("alpha", "a")
    await apublish("announcement", "not subscribed")
    beta = await apublish("beta", "b")

    assert await stream.frames(2) == [frame(alpha, "alpha", '"a"'), frame(beta, "beta", '"b"')]


async def test_repeated_types_count_once(asgi):
    with notifications_settings(MAX_TYPES_PER_STREAM=1):
        stream, _ = await open_stream(asgi, "/sse/subscribe/?types=alpha,alpha,")

        event_id = await apublish("alpha", 1)

        assert await stream.frames(1) == [frame(event_id, "alpha", "1")]


async def test_event_to_a_user_topic_stays_off_the_event_type_stream(asgi):
    stream, _ = await open_stream(asgi, "/sse/subscribe/alpha/")

    await apublish("alpha", "private", user=7)
    public = await apublish("alpha", "public")

    assert await stream.frames(1) == [frame(public, "alpha", '"public"')]


@pytest.mark.parametrize("resume", ["header", "query"])
async def test_reconnect_replays_what_was_missed_then_goes_live(asgi, resume):
    first, _ = await open_stream(asgi, "/sse/subscribe/?types=alpha,beta")
    seen = await apublish("alpha", 1)
    assert event_ids(await first.frames(1)) == [seen]
    await first.disconnect()
    missed = [await apublish("beta", 2), await apublish("announcement", 3), await apublish("alpha", 4)]

    if resume == "header":
        second = asgi("/sse/subscribe/?types=alpha,beta", headers={"Last-Event-ID": seen})
    else:
        second = asgi(f"/sse/subscribe/?types=alpha,beta&lastEventId={seen}")
    await second.start()
    assert await second.body() == RETRY + frame(missed[0], "beta", "2") + frame(missed[2], "alpha", "4")
    live = await apublish("beta", 5)
    assert await second.body() == frame(live, "beta", "5")


async def test_header_wins_over_query_parameter(asgi):
    await open_stream(asgi, "/sse/subscribe/alpha/")
    old, new = await apublish("alpha", 1), await apublish("alpha", 2)

    stream = await asgi(f"/sse/subscribe/alpha/?lastEventId={old}", headers={"Last-Event-ID": new}).start()

    assert await stream.body() == RETRY


async def test_concurrent_reconnects_miss_nothing_and_repeat_nothing(asgi):
    """Streams reconnect while events are published; together they see each event once."""
    stream, _ = await open_stream(asgi, "/sse/subscribe/?types=alpha,beta")
    published = []

    async def publish_steadily():
        for n in range(80):
            published.append(await apublish("alpha" if n % 3 else "beta", n))
            await asyncio.sleep(0)

    publisher = asyncio.create_task(publish_steadily())
    received: list[str] = []
    for round_number in range(8):
        for _ in range(3):
            received += event_ids(await stream.frames(1))
        await stream.disconnect()
        resume = received[-1]
        if round_number % 2:
            stream = asgi("/sse/subscribe/?types=alpha,beta", headers={"Last-Event-ID": resume})
        else:
            stream = asgi(f"/sse/subscribe/?types=beta,alpha&lastEventId={resume}")
        await stream.start()
        assert await stream.frames(1) == [RETRY]
    await publisher
    received += event_ids(await stream.frames(len(published) - len(received)))

    assert received == published
    assert len(set(received)) == 80


@pytest.mark.parametrize(
    "last_event_id, reason",
    [
        ("0ther-1", "history_unavailable"),
        ("{epoch}-999", "history_unavailable"),
        ("garbage", "invalid_id"),
        ("", None),
        ("x" * 5000, "invalid_id"),
        ("ünïcödé-1", "invalid_id"),
        ("1-1; DROP TABLE", "invalid_id"),
    ],
)
async def test_unusable_last_event_id_resets_the_stream_never_fails(asgi, last_event_id, reason):
    await open_stream(asgi, "/sse/subscribe/alpha/")
    await apublish("alpha", 1)
    head = str(await get_history().head())
    last_event_id = last_event_id.format(epoch=head.split("-")[0])

    stream = await asgi("/sse/subscribe/alpha/", headers={"Last-Event-ID": last_event_id}).start()

    assert stream.status == 200
    if reason is None:
        assert await stream.body() == RETRY + position(head)
    else:
        assert await stream.body() == RETRY + reset_frame(head, reason)
    live = await apublish("alpha", 2)
    assert await stream.body() == frame(live, "alpha", "2")


async def test_last_event_id_older_than_history_resets_the_stream(asgi):
    with notifications_settings(HISTORY_SIZE=2):
        await open_stream(asgi, "/sse/subscribe/alpha/")
        evicted = await apublish("alpha", 1)
        for n in range(2, 5):
            head = await apublish("alpha", n)

        stream = await asgi(f"/sse/subscribe/alpha/?lastEventId={evicted}").start()

        assert await stream.body() == RETRY + reset_frame(head, "history_unavailable")


async def test_catch_up_from_within_history_is_exact_even_with_a_small_history(asgi):
    with notifications_settings(HISTORY_SIZE=2):
        await open_stream(asgi, "/sse/subscribe/alpha/")
        ids = [await apublish("alpha", n) for n in range(4)]

        stream = await asgi(f"/sse/subscribe/alpha/?lastEventId={ids[1]}").start()

        assert await stream.body() == RETRY + frame(ids[2], "alpha", "2") + frame(ids[3], "alpha", "3")


async def test_idle_stream_gets_heartbeat_comments(asgi):
    with notifications_settings(HEARTBEAT=0.05):
        stream, _ = await open_stream(asgi, "/sse/subscribe/alpha/")

        assert await stream.body() == b":\n\n"
        assert await stream.body() == b":\n\n"
        event_id = await apublish("alpha", 1)
        assert await stream.frames(1) == [frame(event_id, "alpha", "1")]


@pytest.mark.parametrize(
    "path",
    [
        "/sse/subscribe/nope/",
        "/sse/subscribe/bad%20name/",
        "/sse/subscribe/user./",
        f"/sse/subscribe/{'a' * 65}/",
        "/sse/subscribe/?types=alpha,nope",
        "/sse/subscribe/?types=alpha,bad%0Aname",
        "/sse/subscribe/",
        "/sse/subscribe/?types=,",
    ],
)
async def test_unknown_or_malformed_type_is_404_with_a_one_line_reason(asgi, path):
    response = await asgi(path).start()
    body = await response.rest()

    assert response.status == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert body.endswith(b".\n") and body.count(b"\n") == 1, body


async def test_too_many_types_is_400(asgi):
    types = ",".join(settings.NOTIFICATIONS["EVENT_TYPES"][:3])
    with notifications_settings(MAX_TYPES_PER_STREAM=2):
        response = await asgi(f"/sse/subscribe/?types={types}").start()

        assert response.status == 400
        assert await response.rest() == b"Too many event types: 3, at most 2 per stream.\n"


async def test_subscribe_answers_get_only(asgi):
    response = await asgi("/sse/subscribe/alpha/", method="OPTIONS").start()

    assert response.status == 405
    assert response.headers["allow"] == "GET"


async def test_disconnect_leaves_no_listener_no_group_and_no_task(asgi):
    hub = get_hub()
    layer = get_channel_layer()
    streams = [(await open_stream(asgi, path))[0] for path in ["/sse/subscribe/alpha/"] * 2]
    streams.append((await open_stream(asgi, "/sse/subscribe/?types=alpha,beta"))[0])
    assert hub.count == 3
    assert set(layer.groups) == {group_name("alpha"), group_name("beta"), EVERY_HUB_GROUP}

    for stream in streams:
        await stream.disconnect()
    await wait_until(lambda: asyncio.all_tasks() == {asyncio.current_task()})

    assert hub.count == 0
    assert hub.listeners == {}
    assert hub.subscription.channel is None
    assert layer.groups == {}
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_leaving_one_type_keeps_the_group_of_another(asgi):
    hub = get_hub()
    layer = get_channel_layer()
    both, _ = await open_stream(asgi, "/sse/subscribe/?types=alpha,beta")
    beta, _ = await open_stream(asgi, "/sse/subscribe/beta/")

    await both.disconnect()

    await wait_until(lambda: set(layer.groups) == {group_name("beta"), EVERY_HUB_GROUP})
    assert set(hub.listeners) == {"beta"}
    event_id = await apublish("beta", 1)
    assert event_ids(await beta.frames(1)) == [event_id]


async def test_slow_client_is_closed_while_others_get_every_event(asgi):
    hub = get_hub()
    with notifications_settings(STREAM_QUEUE_SIZE=2):
        fast, _ = await open_stream(asgi, "/sse/subscribe/alpha/")
        # The application's send blocks as soon as one message is unread.
        slow = await asgi("/sse/subscribe/alpha/", buffer=1).start()
        assert (await slow.body()).startswith(RETRY)

        ids = []
        for n in range(10):
            ids.append(await apublish("alpha", n))
            assert event_ids(await fast.frames(1)) == ids[-1:]

        assert hub.stats.slow_clients_closed == 1
        slow_frames = []
        while not slow.ended:
            slow_frames.append(await slow.body())
        received = event_ids(slow_frames)
        assert 0 < len(received) < len(ids)
        assert received == ids[: len(received)]
        await asyncio.wait_for(slow.task, 2)
        assert hub.count == 1


async def test_layer_carries_one_message_per_event_however_many_streams(asgi):
    layer = get_channel_layer()
    streams = []
    for count in (1, 5):
        while len(streams) < count:
            streams.append((await open_stream(asgi, "/sse/subscribe/alpha/"))[0])

        members = layer.groups[group_name("alpha")]
        event_id = await apublish("alpha", count)

        assert len(members) == 1
        for stream in streams:
            assert event_ids(await stream.frames(1)) == [event_id]


async def test_drain_sends_queued_events_then_a_farewell_and_ends(asgi):
    stream, _ = await open_stream(asgi, "/sse/subscribe/alpha/")
    event_id = await apublish("alpha", 1)

    assert await drain(timeout=2) == 0

    assert await stream.rest() == (
        frame(event_id, "alpha", "1")
        + RETRY
        + b'event: server_shutdown\ndata: {"reconnect_after_ms": 2000}\n\n'
    )
    late = await asgi("/sse/subscribe/alpha/").start()
    assert late.headers["connection"] == "close"
    assert await late.rest() == RETRY + b'event: server_shutdown\ndata: {"reconnect_after_ms": 2000}\n\n'


async def test_an_open_stream_keeps_no_parsed_query_headers_or_cookies():
    from django.test import AsyncRequestFactory

    from notifications.views import subscribe

    factory = AsyncRequestFactory()
    factory.cookies["a"] = "b"
    request = factory.get("/sse/subscribe/announcement/?keepalive=event", headers={"Last-Event-ID": ""})
    assert request.COOKIES == {"a": "b"}  # Parsed before the view, as the session middleware does.

    response = await subscribe(request, "announcement")

    assert response.status_code == 200
    assert not {"GET", "headers", "COOKIES"} & set(request.__dict__)
    # Asked again, they are parsed again.
    assert request.GET["keepalive"] == "event"
    assert request.COOKIES == {"a": "b"}
    await response.streaming_content.aclose()
