"""publish() and apublish(): ids, validation before storage, sync hand-off."""

import asyncio
import datetime
import decimal
import uuid

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import AsyncClient

from notifications import apublish, apublish_many, process, publish, publish_many
from notifications.exceptions import (
    BackendUnavailable,
    InvalidEventType,
    NotificationsError,
    PayloadError,
    PublishRefused,
)
from notifications.history import EventId, get_history
from notifications.history.database import DatabaseHistory

from .asgi_client import event_ids
from .support import notifications_settings, stored_events


async def stored_since(start: EventId, topics=("alpha",)) -> list:
    return await stored_events(get_history(), list(topics), start)


async def test_apublish_returns_the_id_history_assigned():
    start = await get_history().head()

    first = await apublish("alpha", {"n": 1})
    second = await apublish("beta", {"n": 2})

    assert [first, second] == [f"{start.epoch}-1", f"{start.epoch}-2"]
    assert [(event.id, event.data) for event in await stored_since(start)] == [(first, '{"n":1}')]


def test_publish_from_sync_code_without_a_serving_loop_returns_the_id():
    event_id = publish("alpha", ["sync"])

    history = get_history()
    events = async_to_sync(stored_events)(history, ["alpha"], EventId(history.epoch, 0))
    assert [(event.id, event.data) for event in events] == [(event_id, '["sync"]')]


async def test_data_that_is_not_json_is_refused_and_nothing_is_stored():
    start = await get_history().head()

    with pytest.raises(PayloadError) as raised:
        await apublish("alpha", {"callback": object})

    assert str(raised.value) == (
        "Event data is not JSON-serialisable: Object of type type is not JSON serializable."
    )
    assert await get_history().head() == start


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
async def test_non_finite_numbers_are_refused_as_browsers_cannot_parse_them(number):
    with pytest.raises(PayloadError) as raised:
        await apublish("alpha", {"ratio": number})

    assert str(raised.value) == (
        f"Event data is not JSON-serialisable: Out of range float values are not JSON compliant: {number!r}."
    )


async def test_data_over_max_payload_bytes_is_refused_and_nothing_is_stored():
    with notifications_settings(MAX_PAYLOAD_BYTES=12):
        start = await get_history().head()
        assert await apublish("alpha", "x" * 10)  # 12 bytes with its quotes: at the limit

        with pytest.raises(PayloadError) as raised:
            await apublish("alpha", "x" * 11)

        assert len(await stored_since(start)) == 1
    assert str(raised.value) == (
        "Event data is 13 bytes as JSON, more than NOTIFICATIONS['MAX_PAYLOAD_BYTES'] (12)."
    )


async def test_payload_size_counts_utf8_bytes_of_the_json():
    with notifications_settings(MAX_PAYLOAD_BYTES=20):
        with pytest.raises(PayloadError, match="is 26 bytes"):
            await apublish("alpha", "éèêë")  # ASCII-escaped: "\\u00e9..." is 26 bytes


async def test_unknown_or_malformed_type_is_refused_and_nothing_is_stored():
    start = await get_history().head()

    with pytest.raises(InvalidEventType, match="'nope' is not registered"):
        await apublish("nope", 1)
    with pytest.raises(InvalidEventType, match="'user.7' is not valid"):
        await apublish("user.7", 1)

    assert await get_history().head() == start


async def test_django_json_encoder_types_are_encoded():
    start = await get_history().head()
    data = {
        "at": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "on": datetime.date(2024, 1, 2),
        "price": decimal.Decimal("12.50"),
        "key": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "took": datetime.timedelta(seconds=90),
    }

    await apublish("alpha", data)

    [event] = await stored_since(start)
    assert event.data == (
        '{"at":"2024-01-02T03:04:05Z","on":"2024-01-02","price":"12.50",'
        '"key":"12345678-1234-5678-1234-567812345678","took":"P0DT00H01M30S"}'
    )


async def test_sync_publish_inside_a_running_loop_says_to_use_apublish():
    with pytest.raises(NotificationsError) as raised:
        publish("alpha", 1)

    assert str(raised.value) == (
        "publish() cannot be called from a running event loop. Use 'await apublish()' in async code."
    )


async def test_sync_publish_from_a_thread_is_handed_to_the_serving_loop(asgi):
    stream = await asgi("/sse/subscribe/alpha/").start()
    await stream.body()

    event_id = await asyncio.to_thread(publish, "alpha", {"from": "thread"})

    assert process.serving_loop is asyncio.get_running_loop()
    assert event_ids(await stream.frames(1)) == [event_id]


async def test_sync_publishes_from_many_threads_all_arrive_once(asgi):
    stream = await asgi("/sse/subscribe/alpha/").start()
    await stream.body()

    ids = await asyncio.gather(*(asyncio.to_thread(publish, "alpha", n) for n in range(20)))

    assert sorted(event_ids(await stream.frames(20))) == sorted(ids)


async def test_user_event_goes_to_the_private_topic_only():
    start = await get_history().head()

    event_id = await apublish("alpha", "just for you", user=7)

    assert await stored_since(start, ["alpha"]) == []
    [event] = await stored_since(start, ["user.7"])
    assert (event.id, event.type, event.data) == (event_id, "alpha", '"just for you"')


@pytest.mark.parametrize(
    "user", [AnonymousUser(), get_user_model()(username="unsaved")], ids=["anonymous", "unsaved"]
)
async def test_user_without_a_key_is_refused(user):
    start = await get_history().head()

    with pytest.raises(InvalidEventType, match="User key None cannot name a topic"):
        await apublish("alpha", 1, user=user)

    assert await get_history().head() == start


@pytest.mark.django_db(transaction=True)
async def test_user_event_reaches_that_users_stream(asgi):
    user = await get_user_model().objects.acreate(username="ada")
    client = AsyncClient()
    await client.aforce_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    private = await asgi(f"/sse/subscribe/user.{user.pk}/", headers={"Cookie": cookie}).start()
    public = await asgi("/sse/subscribe/alpha/").start()
    await private.body()
    await public.body()

    private_id = await apublish("alpha", "private", user=user)
    public_id = await apublish("alpha", "public")

    assert private.status == 200
    assert await private.frames(1) == [f'id: {private_id}\nevent: alpha\ndata: "private"\n\n'.encode()]
    assert event_ids(await public.frames(1)) == [public_id]


async def test_publish_is_refused_while_the_process_stops():
    start = await get_history().head()
    process.stopping = True

    with pytest.raises(PublishRefused) as raised:
        await apublish("alpha", 1)
    with pytest.raises(PublishRefused):
        await asyncio.to_thread(publish, "alpha", 1)

    assert str(raised.value) == (
        "This process is shutting down and accepts no new events. "
        "Publish from another process or after the restart."
    )
    assert await get_history().head() == start


async def test_publish_many_to_many_users_stores_each_event_once_in_order():
    start = await get_history().head()
    users = [f"u{n}" for n in range(250)]

    ids = await apublish_many(("task_completed", {"report": 1}, user) for user in users)

    assert [EventId.parse(event_id).seq for event_id in ids] == list(range(start.seq + 1, start.seq + 251))
    [event] = await stored_since(start, topics=["user.u7"])
    assert (event.id, event.type, event.data) == (ids[7], "task_completed", '{"report":1}')


async def test_publish_many_refuses_all_when_one_event_is_invalid():
    start = await get_history().head()

    with pytest.raises(InvalidEventType):
        await apublish_many([("alpha", {"n": 1}), ("no-such-type", {}), ("beta", {"n": 2})])

    assert await get_history().head() == start


async def test_publish_many_wakes_every_hub_once_and_streams_get_their_events():
    from notifications.streams import event_stream

    alice, bob = event_stream(["user.alice"], None), event_stream(["user.bob", "alpha"], None)
    await anext(alice), await anext(bob)

    ids = await apublish_many([("alpha", {}), ("task_completed", {}, "alice"), ("task_completed", {}, "bob")])

    assert event_ids([await asyncio.wait_for(anext(alice), 5)]) == [ids[1]]
    assert event_ids([await asyncio.wait_for(anext(bob), 5)]) == [ids[0], ids[2]]
    await alice.aclose(), await bob.aclose()


def test_publish_many_from_sync_code_returns_the_ids():
    ids = publish_many([("alpha", {"n": 1}), ("beta", {"n": 2})])

    assert [EventId.parse(event_id).seq for event_id in ids] == [1, 2]


async def test_publish_many_from_a_generator_of_fresh_data_stores_each_events_own_data():
    """Fresh dicts freed one by one can reuse an address: the encoding cache must not mix them up."""
    start = await get_history().head()

    await apublish_many(("alpha", {"n": n}) for n in range(200))

    stored = await stored_since(start)
    assert [event.data for event in stored] == [f'{{"n":{n}}}' for n in range(200)]


@pytest.fixture
def database_refusing_n2(transactional_db):
    """A DatabaseHistory whose database refuses, mid-transaction, to store an event with data {"n":2}."""
    # The suite's database is SQLite (tests/settings.py): a trigger of its own.
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TRIGGER refuse_n2 BEFORE INSERT ON notifications_history_event "
            """WHEN NEW.data = '{"n":2}' BEGIN SELECT RAISE(ABORT, 'database restarting'); END"""
        )
    history = DatabaseHistory(100)
    yield history
    async_to_sync(history.close)()
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER refuse_n2")


async def test_publish_many_that_the_history_fails_midway_stores_nothing(database_refusing_n2, monkeypatch):
    """README: a publish is refused with nothing stored, or accepted; never reported failed and delivered."""
    history = database_refusing_n2
    monkeypatch.setattr("notifications.publishing.get_history", lambda: history)
    start = await history.head()

    with pytest.raises(BackendUnavailable):
        await apublish_many([("alpha", {"n": 1}), ("alpha", {"n": 2}), ("alpha", {"n": 3})])

    assert await stored_events(history, ["alpha"], start) == []
    assert await history.head() == start
