"""
A stock ``daphne project.asgi:application`` stops cleanly: every event
published before the signal, then the farewell, then a terminated response
and a prompt exit with status 0 and no traceback.
"""

import asyncio
import http.client
import signal
import socket
import time

import pytest

from notifications.testing import SSEClient, daphne, free_port, http_request, open_streams

from .conftest import ROOT
from .lifecycle import probe_lines, problem_lines, publish_http, publish_ids
from .support import DEMO_ASGI, segments_received, stalled_stream, wait_until

STREAMS = 500


def start_daphne(tmp_path, env, **extra_env):
    port = free_port()
    return daphne(port, DEMO_ASGI, env={**env, **extra_env}, cwd=ROOT).start(tmp_path / f"daphne-{port}.log")


async def exits_cleanly(server) -> bool:
    """Wait for the stopped server; return whether it exited with 0 and no traceback or ERROR."""
    returncode = await asyncio.to_thread(server.wait, 15)
    assert problem_lines(server.output()) == []
    return returncode == 0


@pytest.fixture
def server(tmp_path, server_env):
    process = start_daphne(tmp_path, server_env)
    yield process
    process.stop()


@pytest.fixture
def patient_server(tmp_path, server_env):
    """A server whose drain waits long enough for the slow requests these tests send."""
    process = start_daphne(tmp_path, server_env, NOTIFICATIONS_DRAIN_TIMEOUT="10")
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


async def slow_request_under_way(server, env) -> asyncio.Task:
    """Start a two-second request and return its task once the server is serving it."""
    slow = asyncio.create_task(asyncio.to_thread(http_request, server.port, "GET", "/probe/slow/?seconds=2"))
    await wait_until(lambda: {"slow_started": 1} in probe_lines(env), 10)
    return slow


async def test_request_during_drain_gets_farewell_and_connection_close(patient_server, server_env):
    server = patient_server
    # An ordinary slow request keeps the drain open for a while.
    slow = await slow_request_under_way(server, server_env)
    server.signal(signal.SIGTERM)
    await wait_until(lambda: "Draining streams=" in server.output(), 10)
    late = SSEClient("127.0.0.1", server.port, "/sse/subscribe/announcement/")
    await late.connect()
    assert await late.read_to_end(5), (late.status, late.body, late.cut, server.output())
    assert late.status == 200
    assert late.response_headers.get("connection") == "close"
    assert [event.event for event in late.events] == ["server_shutdown"]
    assert late.retry == 2000
    status, body = await slow
    assert (status, body) == (200, b"slow done\n"), "in-flight requests finish during the drain"
    assert await exits_cleanly(server)


async def test_publish_during_drain_is_refused_with_a_clear_error(patient_server, server_env):
    server = patient_server
    [client] = await open_streams(server.port, "/sse/subscribe/announcement/", 1)
    before = await publish_ids(server.port, "announcement", 2)
    slow = await slow_request_under_way(server, server_env)
    server.signal(signal.SIGTERM)
    await wait_until(lambda: "Draining streams=" in server.output(), 10)
    status, body = await asyncio.to_thread(publish_http, server.port, "announcement", {"late": True})
    assert status == 503
    assert "shutting down" in body
    assert await client.read_to_end(5)
    assert [event.id for event in client.of_type("announcement")] == before
    assert client.events[-1].event == "server_shutdown"
    await slow
    assert await asyncio.to_thread(server.wait, 15) == 0


async def test_after_drain_timeout_streams_get_a_farewell_and_other_responses_fail_visibly(
    tmp_path, server_env
):
    server = start_daphne(tmp_path, server_env, NOTIFICATIONS_DRAIN_TIMEOUT="1")
    try:
        ours = await open_streams(server.port, "/sse/subscribe/announcement/", 20)
        stubborn = SSEClient("127.0.0.1", server.port, "/probe/stubborn/")
        await stubborn.connect()
        await stubborn.read_until(lambda c: c.comments > 0, 5)
        download = SSEClient("127.0.0.1", server.port, "/probe/download/")
        await download.connect()
        await download.read_until(lambda c: b"0,row" in c.body, 5)
        server.signal(signal.SIGTERM)
        assert all(await asyncio.gather(*(client.read_to_end(10) for client in ours)))
        assert await stubborn.read_to_end(10), "a stream that ignores shutdown is still terminated"
        assert stubborn.events[-1].event == "server_shutdown"
        assert not await download.read_to_end(10), "a download is not made to look complete"
        assert download.cut
        assert b"server_shutdown" not in download.body and b"retry:" not in download.body
        assert await asyncio.to_thread(server.wait, 15) == 0
        output = server.output()
        warnings = [line for line in output.splitlines() if "did not end within" in line]
        assert len(warnings) == 1, output
        assert "requests=2" in warnings[0]
        assert problem_lines(output) == []
    finally:
        server.stop()


def get(port: int, path: str) -> tuple[int, str | None, bytes]:
    """GET ``path``; return the status, the Connection header and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Connection"), response.read()
    finally:
        connection.close()


async def test_a_request_arriving_during_the_drain_is_served_with_connection_close(patient_server):
    server = patient_server
    [stream] = await open_streams(server.port, "/sse/subscribe/announcement/", 1)
    in_flight = SSEClient("127.0.0.1", server.port, "/probe/download/?rows=10")
    await in_flight.connect()
    await in_flight.read_until(lambda c: b"0,row" in c.body, 5)
    server.signal(signal.SIGTERM)
    assert await stream.read_to_end(5), "the drain has begun"

    # Arrives during the drain and outlasts every request in flight then.
    late = await asyncio.to_thread(get, server.port, "/probe/slow/?seconds=1.5")

    assert late == (200, "close", b"slow done\n")
    assert await in_flight.read_to_end(5), "the download in flight finished"
    assert in_flight.body == b"".join(f"{n},row\n".encode() for n in range(10))
    assert await exits_cleanly(server)
    assert "forced=0" in server.output()


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


def read_response(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Read a chunked response to its end; return its body and whether it was terminated."""
    sock.settimeout(timeout)
    raw = b""
    while chunk := sock.recv(1 << 20):
        raw += chunk
    head, _, rest = raw.partition(b"\r\n\r\n")
    body = b""
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return body, rest == b"\r\n"
        body, rest = body + rest[:size], rest[size + 2 :]
    return body, False


async def test_a_stream_whose_client_is_not_reading_at_the_stop_still_gets_everything(tmp_path, server_env):
    # More than the socket buffers hold, so the farewell waits behind unsent
    # bytes when the drain closes the connection.
    server = start_daphne(tmp_path, server_env, NOTIFICATIONS_MAX_UNSENT_BYTES=str(64 << 20))
    try:
        stalled = stalled_stream(server.port)
        [reader] = await open_streams(server.port, "/sse/subscribe/announcement/", 1)
        ids = []
        for n in range(60):
            status, body = await asyncio.to_thread(
                publish_http, server.port, "announcement", {"n": n, "padding": "x" * 60_000}
            )
            ids.append(body["id"])
        assert await reader.read_until(lambda c: len(c.of_type("announcement")) == 60, 30)
        server.signal(signal.SIGTERM)
        body, terminated = await asyncio.to_thread(read_response, stalled, 15)
        client = SSEClient("127.0.0.1", server.port, "")
        client.feed(body)
        assert [event.id for event in client.of_type("announcement")] == ids
        assert client.events[-1].event == "server_shutdown"
        assert terminated
        assert await exits_cleanly(server)
    finally:
        server.stop()


async def test_a_drained_streams_last_bytes_and_close_reach_the_client_in_one_segment(server):
    # Thousands of streams end together in a drain: one segment per stream,
    # not two, halves the wake-ups of clients and, over loopback, the work the
    # server's own system calls do for the receiving side.
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET /sse/subscribe/announcement/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    sock.settimeout(10)
    raw = b""
    while not raw.endswith(b"\n\n\r\n"):  # The opening frame, a whole chunk.
        raw += sock.recv(1 << 16)
    before = segments_received(sock)
    server.signal(signal.SIGTERM)
    while chunk := sock.recv(1 << 16):
        raw += chunk
    assert segments_received(sock) - before == 1
    assert b"event: server_shutdown" in raw
    assert raw.endswith(b"\r\n0\r\n\r\n")
    assert await exits_cleanly(server)


async def test_a_stream_served_on_a_unix_socket_is_drained_like_one_on_tcp(tmp_path, server_env):
    # Behind nginx, Daphne often listens on a Unix socket (daphne -u); the
    # drain's TCP-only steps (the cork before the last bytes) must not break it.
    path = tmp_path / "daphne.sock"
    port = free_port()
    server = daphne(port, DEMO_ASGI, env=server_env, cwd=ROOT, options=("-u", str(path)))
    server.start(tmp_path / "daphne.log")
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        # start() waits for the TCP port; Daphne listens on the socket next.
        await wait_until(lambda: sock.connect_ex(str(path)) == 0, timeout=10)
        sock.sendall(b"GET /sse/subscribe/announcement/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
        raw = b""
        while not raw.endswith(b"\n\n\r\n"):  # The opening frame, a whole chunk.
            raw += sock.recv(1 << 16)
        server.signal(signal.SIGTERM)
        while chunk := sock.recv(1 << 16):
            raw += chunk
        assert b"event: server_shutdown" in raw
        assert raw.endswith(b"\r\n0\r\n\r\n")
        assert await exits_cleanly(server)
    finally:
        server.stop()
