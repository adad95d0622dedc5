"""A stream served by a real Daphne process, read over a socket as a browser would."""

import asyncio

import pytest

from notifications.testing import SSEClient, daphne, free_port

from .conftest import ROOT
from .lifecycle import publish_http
from .support import DEMO_ASGI


@pytest.fixture
def server(tmp_path, server_env):
    port = free_port()
    process = daphne(port, DEMO_ASGI, env={**server_env, "NOTIFICATIONS_HEARTBEAT": "0.2"}, cwd=ROOT)
    process.start(tmp_path / "daphne.log")
    yield process
    process.stop()


async def test_daphne_serves_headers_retry_events_and_heartbeats(server):
    client = SSEClient("127.0.0.1", server.port, "/sse/subscribe/announcement/")
    await client.connect()

    assert client.status == 200
    assert client.response_headers["content-type"] == "text/event-stream; charset=utf-8"
    assert client.response_headers["cache-control"] == "no-cache"
    assert client.response_headers["x-accel-buffering"] == "no"
    assert client.response_headers["transfer-encoding"] == "chunked"
    assert "content-encoding" not in client.response_headers
    assert await client.read_until(lambda c: c.retry is not None, 10)
    assert client.retry == 2000

    status, body = await asyncio.to_thread(
        publish_http, server.port, "announcement", {"text": "héllo\nworld"}
    )
    assert status == 202, body
    event_id = body["id"]
    assert await client.read_until(lambda c: c.events, 10)
    [event] = client.events
    assert (event.id, event.event, event.json()) == (event_id, "announcement", {"text": "héllo\nworld"})

    comments_before = client.comments
    assert await client.read_until(lambda c: c.comments >= comments_before + 2, 5)
    assert not (client.terminated or client.cut)
    client.close()
    assert "Traceback" not in server.output()
