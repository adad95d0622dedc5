"""The Prometheus endpoint: off by default, protected, and reading the counts where they live."""

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from notifications import apublish, lifecycle
from notifications.fanout import STREAMS_LIMIT
from notifications.history import get_history
from notifications.hub import get_hub
from notifications.topics import user_topic

from .support import create_user, get, notifications_settings, session_headers, streams_open

# Requests end with Django's close_old_connections, which touches the database.
pytestmark = pytest.mark.django_db

METRICS_TOKEN = "metrics-token-0123456789abcdef0123456789"
BEARER = [(b"authorization", f"Bearer {METRICS_TOKEN}".encode())]


def token_access():
    return notifications_settings(METRICS_ACCESS="token", METRICS_TOKEN=METRICS_TOKEN)


async def scrape() -> dict[tuple[str, tuple], float]:
    """Return every sample of the metrics endpoint by (name, sorted labels)."""
    response = await get("/sse/metrics/", headers=BEARER)
    assert response.status == 200, response.body
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.body.decode())
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def open_stream(path: str, **kwargs) -> asyncio.Task:
    return asyncio.create_task(get(path, until=lambda body: False, timeout=30, **kwargs))


async def close_all(tasks) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_metrics_are_off_by_default():
    response = await get("/sse/metrics/", headers=BEARER)
    assert response.status == 404
    assert response.body == b"Metrics are off: NOTIFICATIONS['METRICS_ACCESS'] is not set.\n"


async def test_token_access_needs_the_metrics_token():
    with token_access():
        missing = await get("/sse/metrics/")
        wrong = await get("/sse/metrics/", headers=[(b"authorization", b"Bearer nope")])
        publish_token = await get(
            "/sse/metrics/", headers=[(b"authorization", b"Bearer test-token-0123456789abcdef0123456789")]
        )
        right = await get("/sse/metrics/", headers=BEARER)
    assert (missing.status, wrong.status, publish_token.status, right.status) == (401, 403, 403, 200)
    assert missing.headers["www-authenticate"] == "Bearer"


@pytest.mark.django_db(transaction=True)
async def test_staff_access_needs_a_staff_session():
    staff = await create_user("staff", is_staff=True)
    user = await create_user("user")
    with notifications_settings(METRICS_ACCESS="staff"):
        anonymous = await get("/sse/metrics/")
        not_staff = await get("/sse/metrics/", headers=await session_headers(user))
        token_only = await get("/sse/metrics/", headers=BEARER)
        allowed = await get("/sse/metrics/", headers=await session_headers(staff))
    assert (anonymous.status, not_staff.status, token_only.status, allowed.status) == (401, 403, 401, 200)
    assert b"notifications_streams_open" in allowed.body


@pytest.mark.django_db(transaction=True)
async def test_open_streams_per_topic_without_user_keys():
    alice = await create_user("alice")
    with token_access():
        streams = [
            open_stream("/sse/subscribe/announcement/"),
            open_stream("/sse/subscribe/", query_string=b"types=announcement,alpha"),
            open_stream(f"/sse/subscribe/{user_topic(alice)}/", headers=await session_headers(alice)),
        ]
        await streams_open(3)
        samples = await scrape()
        response = await get("/sse/metrics/", headers=BEARER)
        await close_all(streams)
        await streams_open(0)
        after = await scrape()
    assert value(samples, "notifications_streams_open") == 3
    assert value(samples, "notifications_topic_streams_open", topic="announcement") == 2
    assert value(samples, "notifications_topic_streams_open", topic="alpha") == 1
    assert value(samples, "notifications_topic_streams_open", topic="user.*") == 1
    assert user_topic(alice).encode() not in response.body
    assert value(after, "notifications_streams_open") == 0


async def test_published_and_delivered_counts():
    with token_access():
        before = await scrape()
        streams = [open_stream("/sse/subscribe/announcement/") for _ in range(3)]
        await streams_open(3)
        hub = get_hub()
        for n in range(4):
            await apublish("announcement", {"n": n})
        await apublish("alpha", {"nobody": "listens"})
        await asyncio.wait_for(_delivered(hub, 12), 5)
        after = await scrape()
        await close_all(streams)
    published = value(after, "notifications_events_published_total", event_type="announcement") - value(
        before, "notifications_events_published_total", event_type="announcement"
    )
    assert published == 4
    assert value(after, "notifications_events_published_total", event_type="alpha") >= 1
    delivered = value(after, "notifications_events_delivered_total") - value(
        before, "notifications_events_delivered_total"
    )
    assert delivered == 12


async def _delivered(hub, count: int) -> None:
    while hub.stats.events_delivered < count:
        await asyncio.sleep(0.005)


async def test_replays_and_resets_by_reason():
    with token_access():
        before = await scrape()
        event = await get_history().append("announcement", "announcement", "{}")
        await get("/sse/subscribe/announcement/", headers=[(b"last-event-id", event.id.encode())])
        await get("/sse/subscribe/announcement/", headers=[(b"last-event-id", b"garbage")])
        await get("/sse/subscribe/announcement/", headers=[(b"last-event-id", b"otherepoch-1")])
        after = await scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("notifications_replays_total") == 1
    assert delta("notifications_stream_resets_total", reason="invalid_id") == 1
    assert delta("notifications_stream_resets_total", reason="history_unavailable") == 1


async def test_limit_refusals_and_rate_limited_publishes():
    with (
        token_access(),
        notifications_settings(
            METRICS_ACCESS="token",
            METRICS_TOKEN=METRICS_TOKEN,
            MAX_STREAMS=1,
            PUBLISH_RATE=0.01,
            PUBLISH_BURST=1,
        ),
    ):
        before = await scrape()
        stream = open_stream("/sse/subscribe/announcement/")
        await streams_open(1)
        await get("/sse/subscribe/announcement/", until=None)
        publish = {
            "method": "POST",
            "body": b"{}",
            "headers": [(b"authorization", b"Bearer test-token-0123456789abcdef0123456789")],
        }
        statuses = [(await get("/sse/publish/announcement/", **publish)).status for _ in range(2)]
        after = await scrape()
        await close_all([stream])
    assert statuses == [202, 429]
    assert (
        value(after, "notifications_streams_refused_total", limit=STREAMS_LIMIT)
        - value(before, "notifications_streams_refused_total", limit=STREAMS_LIMIT)
        == 1
    )
    assert (
        value(after, "notifications_publish_rate_limited_total")
        - value(before, "notifications_publish_rate_limited_total")
        == 1
    )


async def test_slow_clients_layer_errors_and_drain_come_from_the_hub():
    with (
        token_access(),
        notifications_settings(METRICS_ACCESS="token", METRICS_TOKEN=METRICS_TOKEN, STREAM_QUEUE_SIZE=1),
    ):
        before = await scrape()
        stream = open_stream("/sse/subscribe/announcement/")
        await streams_open(1)
        hub = get_hub()
        # Two events before the stream can run: the second overflows its queue.
        events = [await get_history().append("announcement", "announcement", "{}") for _ in range(2)]
        assert len(events) == 2
        await hub.reader.pump()
        await streams_open(0)
        hub.stats.layer_errors += 2
        await lifecycle.drain(1)
        after = await scrape()
        await close_all([stream])
    assert (
        value(after, "notifications_slow_clients_closed_total")
        - value(before, "notifications_slow_clients_closed_total")
        == 1
    )
    assert (
        value(after, "notifications_layer_errors_total") - value(before, "notifications_layer_errors_total")
        == 2
    )
    assert value(after, "notifications_draining") == 1
    assert value(after, "notifications_drain_seconds") >= 0
    assert ("notifications_drain_seconds", ()) in after
    assert value(after, "process_resident_memory_bytes") > 0
