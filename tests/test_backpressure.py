"""Under Daphne, a client that stops reading is disconnected, not buffered without bound."""

import asyncio
import socket
import time

from notifications.testing import daphne, free_port, open_streams

from .conftest import ROOT
from .lifecycle import publish_http
from .support import DEMO_ASGI, stalled_stream

PAYLOAD = "x" * 60_000


def connection_was_closed(sock: socket.socket, timeout: float) -> bool:
    """Read everything queued; return whether the server closed the connection."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(1 << 20):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


async def test_client_that_stops_reading_is_closed_while_others_get_everything(tmp_path, server_env):
    env = {**server_env, "NOTIFICATIONS_MAX_UNSENT_BYTES": "524288"}
    server = daphne(free_port(), DEMO_ASGI, env=env, cwd=ROOT).start(tmp_path / "daphne.log")
    try:
        stalled = stalled_stream(server.port)
        [reader] = await open_streams(server.port, "/sse/subscribe/announcement/", 1)
        reading = asyncio.create_task(reader.read_until(lambda c: len(c.of_type("announcement")) >= 150, 60))
        # One at a time: a client that reads keeps up with each event.
        ids = [await asyncio.to_thread(publish_one, server.port, n) for n in range(150)]
        await reading
        assert sorted(event.id for event in reader.of_type("announcement")) == sorted(ids)
        # Its unsent bytes passed the bound long before 150 x 60 kB: closed.
        assert await asyncio.to_thread(connection_was_closed, stalled, 30)
        assert "Traceback" not in server.output()
        reader.close()
    finally:
        server.stop()


def publish_one(port, n):
    status, body = publish_http(port, "announcement", {"n": n, "padding": PAYLOAD})
    assert status == 202, body
    return body["id"]
