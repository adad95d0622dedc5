"""A stock Daphne process stops cleanly with hundreds of streams open."""

import asyncio
import json
import signal
import time

import pytest

from notifications.testing import daphne, free_port, http_request, open_streams

from .conftest import ROOT

TOKEN = "test-token-0123456789abcdef0123456789"
STREAMS = 500


def publish_http(port, event_type, data):
    status, body = http_request(
        port,
        "POST",
        f"/sse/publish/{event_type}/",
        json.dumps(data).encode(),
        {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert status == 202, body
    return json.loads(body)["id"]


@pytest.fixture
def server(tmp_path, server_env):
    port = free_port()
    process = daphne(port, env=server_env, cwd=ROOT).start(tmp_path / "daphne.log")
    yield process
    process.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_stop_delivers_everything_then_farewell_then_exits(server, signum):
    clients = await open_streams(server.port, "/sse/subscribe/announcement/", STREAMS)
    ids = [await asyncio.to_thread(publish_http, server.port, "announcement", {"n": n}) for n in range(5)]
    sent_at = server.signal(signum)
    results = await asyncio.gather(*(client.read_to_end(10) for client in clients))
    returncode = await asyncio.to_thread(server.wait, 10)
    exit_seconds = time.monotonic() - sent_at
    output = server.output()

    assert returncode == 0, output
    assert all(results), "every response ends with the chunked terminator"
    for client in clients:
        assert [event.id for event in client.of_type("announcement")] == ids
        assert [event.event for event in client.events][-1] == "server_shutdown"
        assert client.retry == 2000
    assert exit_seconds < 5, exit_seconds
    assert "Traceback" not in output
    assert "ERROR" not in output
    for client in clients:
        client.close()
