"""
A stock ``daphne project.asgi:application`` stops cleanly: every event
published before the signal, then the farewell, then a terminated response
and a prompt exit with status 0 and no traceback.
"""

import asyncio
import signal
import time

import pytest

from notifications.testing import SSEClient, daphne, free_port, http_request, open_streams

from .conftest import ROOT
from .lifecycle import probe_lines, problem_lines, publish_http, publish_ids
from .support import DEMO_ASGI

STREAMS = 500


def start_daphne(tmp_path, env, **extra_env):
    port = free_port()
    return daphne(port, DEMO_ASGI, env={**env, **extra_env}, cwd=ROOT).start(tmp_path / f"daphne-{port}.log")


@pytest.fixture
def server(tmp_path, server_env):
    process = start_daphne(tmp_path, server_env)
    yield process
    process.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_stop_delivers_everything_then_farewell_then_exits(server, server_env, signum):
    clients = await open_streams(server.port, "/sse/subscribe/announcement/", STREAMS)
    ids = await publish_ids(server.port, "announcement", 5)
    sent_at = server.signal(signum)
    terminated = await asyncio.gather(*(client.read_to_end(15) for client in clients))
    returncode = await asyncio.to_thread(server.wait, 15)
    print(f"{STREAMS} streams: exit {time.monotonic() - sent_at:.2f}s after {signum.name}")
    output = server.output()

    assert returncode == 0, output
    assert all(terminated), "every response ends with the chunked terminator"
    for client in clients:
        assert [event.id for event in client.of_type("announcement")] == ids
        assert client.events[-1].event == "server_shutdown"
        assert client.retry == 2000
        client.close()
    assert problem_lines(output) == []
    assert "forced=0" in output, output
    probe = probe_lines(server_env)
    finished = sum(line.get("request_finished", 0) for line in probe)
    assert finished >= STREAMS + len(ids), "request_finished ran for every stream and publish"
    assert {"groups_at_exit": {}} in probe, "every group membership was removed"


async def test_request_during_drain_gets_farewell_and_connection_close(tmp_path, server_env):
    server = start_daphne(tmp_path, server_env, NOTIFICATIONS_DRAIN_TIMEOUT="10")
    try:
        # An ordinary slow request keeps the drain open for a while.
        slow = asyncio.create_task(
            asyncio.to_thread(http_request, server.port, "GET", "/probe/slow/?seconds=2")
        )
        await asyncio.sleep(0.3)
        server.signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        late = SSEClient("127.0.0.1", server.port, "/sse/subscribe/announcement/")
        await late.connect()
        assert await late.read_to_end(5), (late.status, late.body, late.cut, server.output())
        assert late.status == 200
        assert late.response_headers.get("connection") == "close"
        assert [event.event for event in late.events] == ["server_shutdown"]
        assert late.retry == 2000
        status, body = await slow
        assert (status, body) == (200, b"slow done\n"), "in-flight requests finish during the drain"
        assert await asyncio.to_thread(server.wait, 15) == 0
        assert problem_lines(server.output()) == []
    finally:
        server.stop()


async def test_publish_during_drain_is_refused_with_a_clear_error(tmp_path, server_env):
    server = start_daphne(tmp_path, server_env, NOTIFICATIONS_DRAIN_TIMEOUT="10")
    try:
        [client] = await open_streams(server.port, "/sse/subscribe/announcement/", 1)
        before = await publish_ids(server.port, "announcement", 2)
        slow = asyncio.create_task(
            asyncio.to_thread(http_request, server.port, "GET", "/probe/slow/?seconds=2")
        )
        await asyncio.sleep(0.3)
        server.signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        status, body = await asyncio.to_thread(publish_http, server.port, "announcement", {"late": True})
        assert status == 503
        assert "shutting down" in body
        assert await client.read_to_end(5)
        assert [event.id for event in client.of_type("announcement")] == before
        assert client.events[-1].event == "server_shutdown"
        await slow
        assert await asyncio.to_thread(server.wait, 15) == 0
    finally:
        server.stop()


async def test_drain_timeout_still_ends_stuck_streams_properly_with_one_warning(tmp_path, server_env):
    server = start_daphne(tmp_path, server_env, NOTIFICATIONS_DRAIN_TIMEOUT="1")
    try:
        ours = await open_streams(server.port, "/sse/subscribe/announcement/", 20)
        stubborn = SSEClient("127.0.0.1", server.port, "/probe/stubborn/")
        await stubborn.connect()
        await stubborn.read_until(lambda c: c.comments > 0, 5)
        server.signal(signal.SIGTERM)
        assert all(await asyncio.gather(*(client.read_to_end(10) for client in ours)))
        assert await stubborn.read_to_end(10), "a stream that ignores shutdown is still terminated"
        assert stubborn.events[-1].event == "server_shutdown"
        assert await asyncio.to_thread(server.wait, 15) == 0
        output = server.output()
        warnings = [line for line in output.splitlines() if "did not end within" in line]
        assert len(warnings) == 1, output
        assert "requests=1" in warnings[0]
        assert problem_lines(output) == []
    finally:
        server.stop()


async def test_ten_start_stop_cycles_with_streams_open_stay_clean(tmp_path, server_env):
    port = free_port()
    for cycle in range(10):
        server = daphne(port, DEMO_ASGI, env=server_env, cwd=ROOT).start(tmp_path / f"cycle-{cycle}.log")
        try:
            clients = await open_streams(port, "/sse/subscribe/announcement/?lastEventId=garbage", 20)
            ids = await publish_ids(port, "announcement", 1, start=cycle)
            server.signal(signal.SIGTERM)
            assert all(await asyncio.gather(*(client.read_to_end(10) for client in clients)))
            assert all([e.id for e in client.of_type("announcement")] == ids for client in clients)
            assert await asyncio.to_thread(server.wait, 15) == 0, f"cycle {cycle} did not exit"
            assert problem_lines(server.output()) == []
        finally:
            server.stop()
    assert {"groups_at_exit": {}} in probe_lines(server_env)
