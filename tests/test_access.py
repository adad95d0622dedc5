"""Who may open which stream, and how long a stream outlives a change of access."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission
from django.contrib.auth.signals import user_logged_out

from notifications import apublish
from notifications.history import get_history
from notifications.hub import get_hub
from notifications.protocol import STREAM_EXPIRED
from notifications.topics import user_topic

from .support import create_user, get, notifications_settings, session_headers, streams_open

pytestmark = pytest.mark.django_db(transaction=True)

VIEW_USER = "auth.view_user"


def has_event(event_type: str):
    return lambda body: f"event: {event_type}\n".encode() in body


async def test_public_type_needs_no_login():
    with notifications_settings(ACCESS={"announcement": "public"}, DEFAULT_ACCESS="authenticated"):
        response = await get("/sse/subscribe/announcement/")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/event-stream")


async def test_anonymous_gets_401_before_any_stream_opens():
    with notifications_settings(ACCESS={"announcement": "authenticated"}):
        response = await get("/sse/subscribe/announcement/")
        assert get_hub().count == 0
    assert response.status == 401
    assert response.ended
    assert response.body == b"Log in to subscribe to 'announcement'.\n"


async def test_default_access_applies_to_types_without_rule():
    with notifications_settings(DEFAULT_ACCESS="authenticated"):
        anonymous = await get("/sse/subscribe/alpha/")
        user = await create_user("alice")
        logged_in = await get("/sse/subscribe/alpha/", headers=await session_headers(user))
    assert (anonymous.status, logged_in.status) == (401, 200)


async def test_permission_rule_refuses_users_without_it():
    user = await create_user("alice")
    headers = await session_headers(user)
    with notifications_settings(ACCESS={"alpha": VIEW_USER}):
        refused = await get("/sse/subscribe/alpha/", headers=headers)
        await sync_to_async(user.user_permissions.add)(await Permission.objects.aget(codename="view_user"))
        allowed = await get("/sse/subscribe/alpha/", headers=headers)
    assert refused.status == 403
    assert refused.body == b"Subscribing to 'alpha' needs the 'auth.view_user' permission.\n"
    assert allowed.status == 200


async def test_one_refused_type_refuses_the_whole_stream():
    with notifications_settings(ACCESS={"beta": "authenticated"}):
        response = await get("/sse/subscribe/", query_string=b"types=alpha,beta")
    assert response.status == 401


async def test_private_topic_is_open_to_its_owner_only():
    alice, bob = await create_user("alice"), await create_user("bob")
    path = f"/sse/subscribe/{user_topic(alice)}/"
    anonymous = await get(path)
    as_bob = await get(path, headers=await session_headers(bob))
    as_bob_many = await get(
        "/sse/subscribe/",
        query_string=f"types={user_topic(alice)}".encode(),
        headers=await session_headers(bob),
    )
    as_alice = await get(path, headers=await session_headers(alice))
    assert anonymous.status == 401
    assert as_bob.status == as_bob_many.status == 403
    assert as_bob.body == f"Topic {user_topic(alice)!r} is another user's private topic.\n".encode()
    assert as_alice.status == 200


async def test_second_user_cannot_read_first_users_private_events():
    alice, bob = await create_user("alice"), await create_user("bob")
    alice_stream = asyncio.create_task(
        get(
            f"/sse/subscribe/{user_topic(alice)}/",
            headers=await session_headers(alice),
            until=has_event("task_completed"),
        )
    )
    bob_stream = asyncio.create_task(
        get(
            f"/sse/subscribe/{user_topic(bob)}/",
            headers=await session_headers(bob),
            until=has_event("task_completed"),
        )
    )
    await streams_open(2)
    await apublish("task_completed", {"secret": "alice-only"}, user=alice)
    await apublish("task_completed", {"secret": "bob-only"}, user=bob)
    alice_body, bob_body = (await alice_stream).body, (await bob_stream).body
    assert b"alice-only" in alice_body and b"bob-only" not in alice_body
    assert b"bob-only" in bob_body and b"alice-only" not in bob_body
    # Guessing Alice's topic from Bob's session gets nothing either.
    stolen = await get(f"/sse/subscribe/{user_topic(alice)}/", headers=await session_headers(bob))
    assert stolen.status == 403 and b"alice-only" not in stolen.body


async def test_stream_expires_after_max_stream_age():
    with notifications_settings(MAX_STREAM_AGE=0.2, RETRY_MS=1500):
        response = await get("/sse/subscribe/announcement/", until=None, timeout=5)
    assert response.ended
    frames = response.frames()
    assert frames[-1].event == STREAM_EXPIRED
    assert json.loads(frames[-1].data) == {"reason": "max_age", "reconnect_after_ms": 1500}
    assert frames[-2].retry == 1500
    assert get_hub().count == 0


async def test_expiring_stream_sends_queued_events_first():
    with notifications_settings(MAX_STREAM_AGE=0.3):
        stream = asyncio.create_task(get("/sse/subscribe/announcement/", until=None, timeout=5))
        await streams_open(1)
        event_id = await apublish("announcement", {"n": 1})
        response = await stream
    events = [(frame.event, frame.id) for frame in response.frames() if frame.event != "message"]
    assert events == [("announcement", event_id), (STREAM_EXPIRED, None)]


async def test_user_who_lost_a_permission_is_refused_at_reconnect():
    user = await create_user("alice")
    permission = await Permission.objects.aget(codename="view_user")
    await sync_to_async(user.user_permissions.add)(permission)
    headers = await session_headers(user)
    with notifications_settings(ACCESS={"alpha": VIEW_USER}, MAX_STREAM_AGE=0.3):
        stream = asyncio.create_task(get("/sse/subscribe/alpha/", headers=headers, until=None, timeout=5))
        await streams_open(1)
        await sync_to_async(user.user_permissions.remove)(permission)
        first = await stream
        reconnect = await get("/sse/subscribe/alpha/", headers=headers)
    assert first.frames()[-1].event == STREAM_EXPIRED
    assert reconnect.status == 403


async def test_logout_ends_the_users_streams_and_drops_queued_events():
    alice, bob = await create_user("alice"), await create_user("bob")
    alice_headers = await session_headers(alice)
    alice_stream = asyncio.create_task(
        get(f"/sse/subscribe/{user_topic(alice)}/", headers=alice_headers, until=None, timeout=5)
    )
    bob_stream = asyncio.create_task(
        get(
            f"/sse/subscribe/{user_topic(bob)}/",
            headers=await session_headers(bob),
            until=has_event(STREAM_EXPIRED),
            timeout=0.5,
        )
    )
    await streams_open(2)
    hub = get_hub()
    topic = user_topic(alice)
    event = await get_history().append(topic, "task_completed", '{"secret":"queued"}')
    # Queue an event and log out before the stream can run: it must not be sent.
    await hub.reader.pump()
    assert any(event.id.encode() in frame for listener in hub.listeners[topic] for frame in listener.frames)
    user_logged_out.send(sender=type(alice), request=None, user=alice)
    response = await alice_stream
    assert response.ended
    assert b"queued" not in response.body
    assert response.frames()[-1].event == STREAM_EXPIRED
    assert json.loads(response.frames()[-1].data)["reason"] == "logged_out"
    with pytest.raises(TimeoutError):
        await bob_stream
    assert hub.count == 0
    reconnect = await get(f"/sse/subscribe/{topic}/", headers=alice_headers)
    assert reconnect.status == 200  # the session itself was not logged out here


async def test_logout_from_another_thread_ends_the_stream():
    alice = await create_user("alice")
    stream = asyncio.create_task(
        get(f"/sse/subscribe/{user_topic(alice)}/", headers=await session_headers(alice), until=None)
    )
    await streams_open(1)
    await sync_to_async(user_logged_out.send, thread_sensitive=False)(
        sender=type(alice), request=None, user=alice
    )
    response = await stream
    assert response.frames()[-1].event == STREAM_EXPIRED
