"""Limits: open streams per process and per user, types per stream, payload size, publish rate."""

import asyncio
import json

import pytest

from notifications.fanout import STREAMS_LIMIT, USER_STREAMS_LIMIT
from notifications.hub import get_hub
from notifications.limits import RateLimiter
from notifications.protocol import LIMIT_EXCEEDED
from notifications.testing import asgi_request

from .support import (
    application,
    create_user,
    get,
    notifications_settings,
    session_headers,
    streams_open,
    wait_until,
)

TOKEN = "test-token-0123456789abcdef0123456789"
# Requests end with Django's close_old_connections, which touches the database.
pytestmark = pytest.mark.django_db

AUTH = [(b"authorization", f"Bearer {TOKEN}".encode()), (b"content-type", b"application/json")]


async def open_stream(path: str = "/sse/subscribe/announcement/", **kwargs) -> asyncio.Task:
    """Start a stream that stays open until the task is cancelled."""
    return asyncio.create_task(get(path, until=lambda body: False, timeout=30, **kwargs))


async def close_all(tasks) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def assert_refused_for(response, name: str, limit: int, retry_ms: int) -> None:
    """A refused stream is a 200 that sets a long retry, says why, and ends."""
    assert response.status == 200
    assert response.ended
    retry, event = response.frames()
    assert retry.retry == retry_ms
    assert event.event == LIMIT_EXCEEDED
    assert json.loads(event.data) == {"limit": name, "max": limit, "reconnect_after_ms": retry_ms}


async def test_stream_over_process_limit_gets_limit_event_and_long_retry():
    with notifications_settings(MAX_STREAMS=3, LIMIT_RETRY_MS=45_000):
        streams = [await open_stream() for _ in range(3)]
        await streams_open(3)
        refused = await get("/sse/subscribe/announcement/", until=None)
        assert_refused_for(refused, STREAMS_LIMIT, 3, 45_000)
        assert get_hub().stats.refusals[STREAMS_LIMIT] == 1
        # A freed slot is available again at once.
        await close_all(streams[:1])
        await streams_open(2)
        accepted = await get("/sse/subscribe/announcement/")
        assert accepted.status == 200 and not accepted.ended
        await close_all(streams)
    await streams_open(0)


async def test_concurrent_opens_never_exceed_process_limit():
    with notifications_settings(MAX_STREAMS=5):
        opened = [await open_stream() for _ in range(20)]
        # The refused ones end at once; the admitted ones stay open.
        await wait_until(lambda: sum(task.done() for task in opened) >= 15 and get_hub().count == 5)
        assert get_hub().count == 5
        done = [task for task in opened if task.done()]
        assert len(done) == 15
        for task in done:
            assert task.result().frames()[-1].event == LIMIT_EXCEEDED
        await close_all(opened)
    await streams_open(0)


@pytest.mark.django_db(transaction=True)
async def test_user_over_own_limit_is_refused_while_others_are_not():
    alice, bob = await create_user("alice"), await create_user("bob")
    alice_headers, bob_headers = await session_headers(alice), await session_headers(bob)
    with notifications_settings(MAX_STREAMS_PER_USER=2, LIMIT_RETRY_MS=30_000):
        streams = [await open_stream(headers=alice_headers) for _ in range(2)]
        await streams_open(2)
        refused = await get("/sse/subscribe/announcement/", headers=alice_headers, until=None)
        assert_refused_for(refused, USER_STREAMS_LIMIT, 2, 30_000)
        bob_stream = await get("/sse/subscribe/announcement/", headers=bob_headers)
        anonymous = await get("/sse/subscribe/announcement/")
        assert bob_stream.status == anonymous.status == 200
        assert not bob_stream.ended and not anonymous.ended
        await close_all(streams)
    await streams_open(0)
    assert get_hub().fanout.by_user == {}


async def test_none_lifts_stream_limits():
    with notifications_settings(MAX_STREAMS=None, MAX_STREAMS_PER_USER=None):
        streams = [await open_stream() for _ in range(30)]
        await streams_open(30)
        await close_all(streams)


async def test_too_many_types_is_a_400():
    with notifications_settings(MAX_TYPES_PER_STREAM=2):
        response = await get("/sse/subscribe/", query_string=b"types=alpha,beta,announcement")
    assert response.status == 400
    assert response.body == b"Too many event types: 3, at most 2 per stream.\n"


async def publish(body: bytes, headers=AUTH, event_type: str = "announcement"):
    return await asgi_request(
        application(), f"/sse/publish/{event_type}/", method="POST", body=body, headers=headers
    )


async def test_payload_over_limit_is_a_413():
    with notifications_settings(MAX_PAYLOAD_BYTES=100):
        small = await publish(json.dumps({"text": "x" * 50}).encode())
        large = await publish(json.dumps({"text": "x" * 200}).encode())
        declared = await publish(b"{}", headers=[*AUTH, (b"content-length", b"1000000")])
    assert small.status == 202
    assert large.status == declared.status == 413
    assert large.body == b"The body is larger than 100 bytes.\n"


async def test_payload_growing_when_reencoded_is_a_413():
    # Raw UTF-8 text is escaped in the compact JSON published, six bytes per letter.
    with notifications_settings(MAX_PAYLOAD_BYTES=100):
        response = await publish(json.dumps("é" * 40, ensure_ascii=False).encode())
    assert response.status == 413
    assert b"MAX_PAYLOAD_BYTES" in response.body


async def test_publish_over_rate_gets_429_with_retry_after():
    with notifications_settings(PUBLISH_RATE=0.5, PUBLISH_BURST=3):
        statuses = [(await publish(b"{}")).status for _ in range(3)]
        limited = await publish(b"{}")
    assert statuses == [202, 202, 202]
    assert limited.status == 429
    assert limited.headers["retry-after"] == "2"
    assert b"PUBLISH_RATE" in limited.body


async def test_publish_rate_none_lifts_the_limit():
    with notifications_settings(PUBLISH_RATE=None, PUBLISH_BURST=1):
        statuses = {(await publish(b"{}")).status for _ in range(5)}
    assert statuses == {202}


async def test_bad_token_does_not_use_the_rate():
    with notifications_settings(PUBLISH_RATE=0.5, PUBLISH_BURST=1):
        wrong = await publish(b"{}", headers=[(b"authorization", b"Bearer wrong")])
        right = await publish(b"{}")
    assert (wrong.status, right.status) == (403, 202)


def test_bucket_refills_at_rate_and_caps_at_burst():
    limiter = RateLimiter()
    assert [limiter.wait_time("k", 10, 2, now=0.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(0.1)]
    assert limiter.wait_time("k", 10, 2, now=0.1) == 0.0
    # A long pause refills to the burst, not beyond.
    grants = [limiter.wait_time("k", 10, 2, now=100.0) for _ in range(3)]
    assert grants[:2] == [0.0, 0.0] and grants[2] > 0
    assert limiter.wait_time("other", 10, 2, now=100.0) == 0.0
    assert limiter.refused == 2
