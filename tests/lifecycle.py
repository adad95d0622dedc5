"""Helpers shared by the lifecycle tests: publishing to and reading a server subprocess."""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from notifications.testing import ServerProcess, SSEClient, daphne, free_port, http_request

from .conftest import ROOT
from .support import DEMO_ASGI

TOKEN = "test-token-0123456789abcdef0123456789"


def manage(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``manage.py *args`` of this project in ``env``; bounded to two minutes."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=ROOT,
        check=check,
        capture_output=True,
        text=True,
        timeout=120,
    )


def publish_http(port: int, event_type: str, data) -> tuple[int, dict | str]:
    """POST one event to a server subprocess; return (status, parsed body)."""
    status, body = http_request(
        port,
        "POST",
        f"/sse/publish/{event_type}/",
        json.dumps(data).encode(),
        {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode()


async def publish_ids(port: int, event_type: str, count: int, start: int = 0) -> list[str]:
    """Publish ``count`` events and return their ids."""
    ids = []
    for n in range(start, start + count):
        status, body = await asyncio.to_thread(publish_http, port, event_type, {"n": n})
        assert status == 202, body
        ids.append(body["id"])
    return ids


def start_daphne(tmp_path: Path, env: dict, port: int | None = None) -> ServerProcess:
    """Start ``daphne project.asgi:application`` with ``env`` on ``port`` (a free one by default)."""
    port = port or free_port()
    log = tmp_path / f"daphne-{port}-{time.monotonic_ns()}.log"
    return daphne(port, DEMO_ASGI, env=env, cwd=ROOT).start(log)


def probe_lines(env: dict) -> list[dict]:
    path = Path(env["PROBE_LOG"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def problem_lines(output: str) -> list[str]:
    """Return log lines that must never appear in a clean stop."""
    return [line for line in output.splitlines() if "Traceback" in line or "ERROR" in line]


def touch(path: Path) -> None:
    """
    Change ``path`` as an edit would, for runserver's StatReloader: it
    compares modification times once a second with those of its last look.
    A second later than the file's own, not "now": a change made within the
    second of its last write still shows, on a file system that keeps only
    whole seconds too.
    """
    modified = path.stat().st_mtime + 1
    os.utime(path, (modified, modified))


async def change_until_reloaded(path: Path, client: SSEClient, attempts: int = 10) -> None:
    """
    Change ``path``, a module runserver's autoreloader watches, until the
    reload begins, as ``client`` (a stream of that server) sees by its
    farewell. StatReloader takes its first look at the files some time after
    the server answers, and a change made before that look is no change to
    it; its later looks come a second apart. A change made again while the
    reload is under way is harmless: the next server's first look sees it.
    """
    for _ in range(attempts):
        touch(path)
        if await client.read_until(lambda c: bool(c.of_type("server_shutdown")), 1.5):
            return
    raise AssertionError(f"runserver did not reload after {attempts} changes of {path}")


class Follower:
    """
    One client, as EventSource behaves: when a response ends or is cut, it
    connects again with Last-Event-ID (the last id any of its connections
    set), here to the next of ``ports`` in turn; move() does the same on
    purpose, as a load balancer sending it elsewhere would. Every connection
    is kept in ``clients``, so each can be checked on its own.
    """

    def __init__(self, ports: list[int], path: str = "/sse/subscribe/announcement/", turn: int = 0):
        self.ports = ports
        self.path = path
        self.turn = turn
        self.clients: list[SSEClient] = []
        self.received = 0  # Events of connections before the current one.

    @property
    def client(self) -> SSEClient | None:
        return self.clients[-1] if self.clients else None

    @property
    def connections(self) -> int:
        return len(self.clients)

    @property
    def events(self) -> list:
        return [event for client in self.clients for event in client.events]

    @property
    def event_count(self) -> int:
        """How many events arrived on all connections (cheap enough for a read_until predicate)."""
        return self.received + (len(self.client.events) if self.client else 0)

    def ids(self, event_type: str = "announcement") -> list[str]:
        return [event.id for event in self.events if event.event == event_type]

    @property
    def last_event_id(self) -> str | None:
        """The browser's last event id: set by any frame with an id, kept across connections."""
        return next((c.last_event_id for c in reversed(self.clients) if c.last_event_id), None)

    async def connect(self) -> None:
        headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
        for _ in range(100):
            port = self.ports[self.turn % len(self.ports)]
            self.turn += 1
            # A bytearray body grows in place: a stream of thousands of events
            # appended to bytes would be copied over and over.
            client = SSEClient("127.0.0.1", port, self.path, headers, body=bytearray())
            try:
                await client.connect(timeout=5)
            except OSError:
                # The server is not listening yet (a restart): EventSource's retry delay.
                await asyncio.sleep(0.05)
                continue
            if self.client is not None:
                self.received += len(self.client.events)
            self.clients.append(client)
            await client.read_until(lambda c: c.retry is not None, 5)
            return
        raise AssertionError("no server accepted the stream")

    async def move(self) -> None:
        """Close the connection and open one to the next server, as after a network error."""
        self.client.close()
        await self.connect()

    async def follow(self, until, timeout: float) -> bool:
        """Read, reconnecting whenever a response ends, until ``until(self)`` or ``timeout``."""
        deadline = time.monotonic() + timeout
        for _ in range(100):
            await self.client.read_until(lambda _: until(self), max(deadline - time.monotonic(), 0))
            if until(self) or time.monotonic() >= deadline:
                break
            self.client.close()
            # EventSource waits its retry delay before it reconnects.
            await asyncio.sleep(0.05)
            await self.connect()
        return until(self)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


async def follow_all(followers: list[Follower], last_id: str, timeout: float = 20) -> None:
    await asyncio.gather(*(f.follow(lambda f: f.last_event_id == last_id, timeout) for f in followers))
