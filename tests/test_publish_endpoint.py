"""POST /sse/publish/<type>/: publishing over HTTP for services that are not Django."""

import json

import pytest
from django.conf import settings
from django.test import AsyncClient

from notifications import process
from notifications.history import get_history

from .support import notifications_settings, stored_events

TOKEN = settings.NOTIFICATIONS["PUBLISH_TOKEN"]
AUTHORIZED = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client():
    # Cookies and CSRF tokens play no part: the bearer token authenticates.
    return AsyncClient(enforce_csrf_checks=True)


async def post(client, path, body, headers=AUTHORIZED, content_type="application/json"):
    return await client.post(path, body, content_type=content_type, headers=headers)


def reason(response) -> str:
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    return response.content.decode()


async def test_valid_post_is_accepted_with_the_event_id(client):
    start = await get_history().head()

    response = await post(client, "/sse/publish/alpha/", b'{"build": 7}')

    assert response.status_code == 202
    [event] = await stored_events(get_history(), ["alpha"], start)
    assert response.json() == {"id": event.id}
    assert (event.type, event.data) == ("alpha", '{"build":7}')


async def test_posted_event_reaches_open_streams(client, asgi):
    stream = await asgi("/sse/subscribe/alpha/").start()
    await stream.body()

    response = await post(client, "/sse/publish/alpha/", b'"hello"')

    assert await stream.frames(1) == [
        f'id: {response.json()["id"]}\nevent: alpha\ndata: "hello"\n\n'.encode()
    ]


async def test_body_that_is_not_json_is_400(client):
    response = await post(client, "/sse/publish/alpha/", b"{not json")

    assert response.status_code == 400
    assert reason(response) == (
        "The body is not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1).\n"
    )


async def test_missing_token_is_401_with_a_bearer_challenge(client):
    for headers in [{}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer"}]:
        response = await post(client, "/sse/publish/alpha/", b"{}", headers=headers)

        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Bearer"
        assert reason(response) == "Send 'Authorization: Bearer <token>'.\n"


async def test_wrong_token_is_403(client):
    response = await post(client, "/sse/publish/alpha/", b"{}", headers={"Authorization": "Bearer wrong"})

    assert response.status_code == 403
    assert reason(response) == "The bearer token is not valid.\n"


async def test_bearer_scheme_is_case_insensitive(client):
    response = await post(client, "/sse/publish/alpha/", b"{}", headers={"Authorization": f"bearer {TOKEN}"})

    assert response.status_code == 202


async def test_unknown_type_is_404_after_authentication(client):
    response = await post(client, "/sse/publish/nope/", b"{}")
    anonymous = await post(client, "/sse/publish/nope/", b"{}", headers={})

    assert response.status_code == 404
    assert reason(response).startswith("Event type 'nope' is not registered.")
    assert anonymous.status_code == 401


async def test_user_topics_cannot_be_published_to_over_http(client):
    response = await post(client, "/sse/publish/user.7/", b"{}")

    assert response.status_code == 404


async def test_endpoint_is_404_when_no_token_is_configured(client):
    with notifications_settings(PUBLISH_TOKEN=None):
        start = await get_history().head()
        response = await post(client, "/sse/publish/alpha/", b"{}")
        get = await client.get("/sse/publish/alpha/")

        assert await get_history().head() == start

    assert response.status_code == 404
    assert reason(response) == "Publishing over HTTP is off: NOTIFICATIONS['PUBLISH_TOKEN'] is not set.\n"
    assert get.status_code == 404


async def test_other_methods_are_405(client):
    response = await client.get("/sse/publish/alpha/", headers=AUTHORIZED)

    assert response.status_code == 405
    assert response["Allow"] == "POST"


async def test_body_over_max_payload_bytes_is_413_and_nothing_is_stored(client):
    with notifications_settings(MAX_PAYLOAD_BYTES=10):
        start = await get_history().head()

        at_limit = await post(client, "/sse/publish/alpha/", b'"12345678"')
        too_large = await post(client, "/sse/publish/alpha/", b'"123456789"')

        assert at_limit.status_code == 202
        assert too_large.status_code == 413
        assert reason(too_large) == "The body is larger than 10 bytes.\n"
        assert len(await stored_events(get_history(), ["alpha"], start)) == 1


async def test_publishing_is_503_while_the_process_stops(client):
    process.stopping = True

    response = await post(client, "/sse/publish/alpha/", b"{}")

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert reason(response).startswith("This process is shutting down and accepts no new events.")


async def test_json_body_is_republished_compactly(client):
    start = await get_history().head()

    await post(client, "/sse/publish/alpha/", json.dumps({"a": [1, 2], "b": "é"}, indent=4).encode())

    [event] = await stored_events(get_history(), ["alpha"], start)
    assert event.data == '{"a":[1,2],"b":"\\u00e9"}'


async def test_bulk_post_publishes_every_event_and_answers_their_ids(client):
    start = await get_history().head()
    body = {"events": [{"type": "alpha", "data": {"n": n}} for n in range(3)]}
    body["events"].append({"type": "task_completed", "data": {"done": True}, "user": 42})

    response = await post(client, "/sse/publish/", json.dumps(body).encode())

    assert response.status_code == 202
    ids = response.json()["ids"]
    assert [event.id for event in await stored_events(get_history(), ["alpha", "user.42"], start)] == ids


async def test_bulk_post_with_one_invalid_event_stores_nothing(client):
    start = await get_history().head()
    body = {"events": [{"type": "alpha", "data": 1}, {"type": "nope", "data": 2}]}

    response = await post(client, "/sse/publish/", json.dumps(body).encode())

    assert response.status_code == 400
    assert "nope" in reason(response)
    assert await get_history().head() == start


async def test_bulk_post_of_the_wrong_shape_or_over_the_burst_is_refused(client):
    wrong = await post(client, "/sse/publish/", b'{"events": [{"type": "alpha"}]}')
    with notifications_settings(PUBLISH_BURST=2):
        too_many = await post(
            client, "/sse/publish/", json.dumps({"events": [{"type": "alpha", "data": 0}] * 3})
        )

    assert wrong.status_code == 400
    assert too_many.status_code == 413
    assert reason(too_many) == "3 events; at most 2 (NOTIFICATIONS['PUBLISH_BURST']) a request.\n"


async def test_bulk_post_counts_every_event_against_the_rate(client):
    with notifications_settings(PUBLISH_RATE=0.001, PUBLISH_BURST=3):
        first = await post(
            client, "/sse/publish/", json.dumps({"events": [{"type": "alpha", "data": 0}] * 2})
        )
        second = await post(
            client, "/sse/publish/", json.dumps({"events": [{"type": "alpha", "data": 0}] * 2})
        )

    assert first.status_code == 202
    assert second.status_code == 429


async def test_bulk_post_needs_the_token(client):
    response = await post(client, "/sse/publish/", b'{"events": []}', headers={})

    assert response.status_code == 401
