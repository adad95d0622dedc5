"""Helpers shared by the tests."""

import asyncio
import inspect
import json
import re
import socket
import struct
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import AsyncClient, override_settings

from notifications.asgi import StreamingASGIHandler
from notifications.hub import get_hub
from notifications.testing import ASGIResponse, asgi_request

PASSWORD = "a-long-test-password-0123"
# The demo project's ASGI application, as daphne takes it.
DEMO_ASGI = "project.asgi:application"


def notifications_settings(**options) -> override_settings:
    """Override some NOTIFICATIONS options, keeping the test settings' others."""
    return override_settings(NOTIFICATIONS={**settings.NOTIFICATIONS, **options})


async def wait_until(predicate, timeout: float = 5) -> None:
    """Wait until ``predicate()``, awaited if it returns an awaitable, is true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        met = predicate()
        if inspect.isawaitable(met):
            met = await met
        if met:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def started(task: asyncio.Task, timeout: float = 5) -> None:
    """Wait until ``task`` has taken its first step (and so waits on whatever it awaits first)."""
    await wait_until(lambda: inspect.getcoroutinestate(task.get_coro()) != inspect.CORO_CREATED, timeout)


async def stored_events(history, topics: list[str], after) -> list | None:
    """Return every event of ``topics`` after ``after`` in ``history``, reading it page by page."""
    events = []
    for _ in range(10_000):
        page = await history.read(topics, after, 100)
        if page is None:
            return None
        events += [record.event for record in page.records]
        if len(page.records) < 100:
            return events
        after = page.through
    raise AssertionError("history kept growing while it was read")


async def streams_open(count: int) -> None:
    """Wait until this loop's hub has ``count`` open streams."""
    hub = get_hub()
    await wait_until(lambda: hub.count == count)


async def create_user(username: str, **fields):
    return await get_user_model().objects.acreate_user(username, password=PASSWORD, **fields)


async def session_headers(user) -> list[tuple[bytes, bytes]]:
    """Return the Cookie header of a fresh session logged in as ``user``."""
    client = AsyncClient()
    await client.aforce_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    return [(b"cookie", f"{cookie.key}={cookie.value}".encode())]


def application() -> StreamingASGIHandler:
    return StreamingASGIHandler()


def first_frame_sent(body: bytes) -> bool:
    """Return whether a stream's first frame (its retry) has arrived."""
    return b"retry:" in body


async def get(path: str, **kwargs) -> ASGIResponse:
    """Request ``path``; a stream is read until its first frame unless ``until`` says otherwise."""
    kwargs.setdefault("until", first_frame_sent)
    return await asgi_request(application(), path, **kwargs)


def client_config(html: str) -> dict:
    """Return the configuration {% notifications_client %} wrote into a page."""
    match = re.search(r'<script id="notifications-config" type="application/json">(.*?)</script>', html)
    return json.loads(match[1])


def stalled_stream(port: int) -> socket.socket:
    """Open a stream with a tiny receive buffer, then never read from it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /sse/subscribe/announcement/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


def segments_received(sock: socket.socket) -> int:
    """Return how many TCP segments ``sock`` has received (Linux's tcp_info.tcpi_segs_in)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return struct.unpack_from("I", info, 140)[0]
