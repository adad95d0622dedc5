"""
Soak: a real daphne process serves streams that open and close for about a
minute, with bad requests interleaved, and ends clean: no stream or task
left behind, memory within MEMORY_GROWTH_BOUND, nothing in the log but the
expected 4xx lines, and one INFO line at each end of the drain.
"""

import asyncio
import json
import re
import signal
import time

import pytest

from notifications.testing import SSEClient, daphne, free_port, http_request

from .conftest import ROOT
from .lifecycle import manage
from .soak_settings import METRICS_TOKEN
from .support import DEMO_ASGI, wait_until

SOAK_SECONDS = 50
STREAMS_PER_ROUND = 16
# RSS may grow this much between the end of the warm-up and the end of the
# soak (allocator arenas and caches settle in the first rounds).
MEMORY_GROWTH_BOUND = 16 * 2**20
# Tasks the serving loop may hold at the end beyond those it held after warm-up.
TASK_SLACK = 5
PUBLISH_TOKEN = "test-token-0123456789abcdef0123456789"
SECRET = "soak-secret-payload"
LIMIT_RETRY_MS = 60_000

CREATE_USERS = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
sessions = {}
for name in ("alice", "bob"):
    user = get_user_model().objects.create_user(name, password="soak-password-0123456789")
    client = Client()
    client.force_login(user)
    sessions[name] = [user.pk, client.cookies["sessionid"].value]
print(json.dumps(sessions))
"""

# What the log may hold: Daphne's start lines and access lines, Django's
# lines for 4xx answers, the drain's two INFO lines.
EXPECTED_LINES = [
    re.compile(r"\S+ \S+ INFO     (Starting server|HTTP/2 support|Configuring endpoint|Listening on) .*"),
    re.compile(r'127\.0\.0\.1:\d+ - - \[[^\]]+\] "(GET|POST) \S+" [24]\d\d \d+'),
    re.compile(
        r"(\S+ \S+ WARNING  |WARNING django.request: )?"
        r"(Not Found|Unauthorized|Forbidden|Bad Request): /sse/\S*"
    ),
    re.compile(r"(INFO notifications.lifecycle: )?Draining streams=\d+ timeout=\S+"),
    re.compile(r"(INFO notifications.lifecycle: )?Drained streams=\d+ in [0-9.]+s forced=0"),
    # The demo runs its tasks in the server (NOTIFICATIONS["EMBEDDED_TASK_WORKER"]).
    re.compile(r"Embedded task worker (started backend=\S+|stopped)"),
    re.compile(r"\S+ \S+ INFO     Starting worker worker_id=embedded-\S+ queues=\S+"),
]


def metrics(port: int) -> dict[str, float]:
    status, body = http_request(
        port, "GET", "/sse/metrics/", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert status == 200, body
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, number = line.rpartition(" ")
            values[name] = float(number)
    return values


def publish(port: int, data, token: str = PUBLISH_TOKEN, event_type: str = "announcement"):
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    return http_request(
        port, "POST", f"/sse/publish/{event_type}/", body, {"Authorization": f"Bearer {token}"}
    )


class Soak:
    def __init__(self, port: int, users: dict):
        self.port = port
        self.alice_pk, alice_session = users["alice"]
        self.bob_pk, bob_session = users["bob"]
        self.alice = {"Cookie": f"sessionid={alice_session}"}
        self.bob = {"Cookie": f"sessionid={bob_session}"}
        self.counts = {"streams": 0, "events": 0, "bad": 0, "limited": 0, "expired": 0, "resets": 0}
        self.last_id = None

    async def open(self, path: str, headers: dict | None = None) -> SSEClient:
        client = SSEClient("127.0.0.1", self.port, path, dict(headers or {}))
        await client.connect()
        assert client.status == 200, path
        await client.read_until(lambda c: c.retry is not None, 10)
        self.counts["streams"] += 1
        return client

    async def bad_requests(self) -> None:
        """Requests that must each get their own clear 4xx."""
        cases = [
            ("GET", "/sse/subscribe/no-such-type/", {}, b"", 404),
            ("GET", f"/sse/subscribe/user.{self.bob_pk}/", self.alice, b"", 403),
            ("GET", "/sse/subscribe/task_completed/", {}, b"", 401),
            ("GET", "/sse/subscribe/?types=a,b,c,d,e,f", {}, b"", 400),
            ("GET", "/sse/subscribe/announcement/", {"Origin": "https://evil.example"}, b"", 403),
            ("GET", "/sse/subscribe/%00%0d%0a/", {}, b"", 404),
        ]
        results = await asyncio.gather(
            *(asyncio.to_thread(http_request, self.port, m, p, b, h) for m, p, h, b, _ in cases),
            asyncio.to_thread(publish, self.port, b'{"broken'),
            asyncio.to_thread(publish, self.port, {}, "wrong-token"),
            asyncio.to_thread(publish, self.port, {}, PUBLISH_TOKEN, "no-such-type"),
        )
        expected = [status for *_, status in cases] + [400, 403, 404]
        assert [status for status, _ in results] == expected, results
        self.counts["bad"] += len(results)

    async def round(self) -> None:
        public = [self.open("/sse/subscribe/announcement/") for _ in range(STREAMS_PER_ROUND // 2)] + [
            self.open("/sse/subscribe/?types=announcement,task_started")
            for _ in range(STREAMS_PER_ROUND // 4)
        ]
        resumed = [
            self.open("/sse/subscribe/announcement/", {"Last-Event-ID": self.last_id or "garbage\x7f"}),
            self.open("/sse/subscribe/announcement/", {"Last-Event-ID": "otherepoch-12"}),
        ]
        # Alice asks for more streams than MAX_STREAMS_PER_USER (3) allows.
        private = [self.open(f"/sse/subscribe/user.{self.alice_pk}/", self.alice) for _ in range(4)]
        private.append(self.open("/sse/subscribe/task_completed/", self.bob))
        streams, _ = await asyncio.gather(asyncio.gather(*public, *resumed, *private), self.bad_requests())
        ids = []
        for n in range(3):
            status, body = await asyncio.to_thread(publish, self.port, {"n": n, "note": SECRET})
            assert status == 202, body
            ids.append(json.loads(body)["id"])
        self.last_id = ids[0]
        live = streams[: len(public) + len(resumed)]
        await asyncio.gather(
            *(
                client.read_until(lambda c: ids[-1] in [e.id for e in c.events] or c.terminated, 10)
                for client in live
            )
        )
        for client in live:
            if client.of_type("stream_expired"):
                self.counts["expired"] += 1
                continue
            assert ids[-1] in [event.id for event in client.of_type("announcement")]
            self.counts["events"] += len(client.of_type("announcement"))
            self.counts["resets"] += len(client.of_type("stream_reset"))
        alices = streams[len(live) : len(live) + 4]
        refused = [client for client in alices if client.of_type("limit_exceeded")]
        assert 1 <= len(refused) and len(alices) - len(refused) <= 3
        for client in refused:
            assert client.retry == LIMIT_RETRY_MS and await client.read_to_end(5)
        self.counts["limited"] += len(refused)
        for index, client in enumerate(streams):
            if index % 2:
                await client.read_until(lambda c: False, 0.01)
            client.close()


async def metrics_once_open_at_most(port: int, streams: int, timeout: float = 10) -> dict:
    """Return the server's metrics once it has at most ``streams`` open; fail after ``timeout`` seconds."""
    reading: dict = {}

    async def open_at_most() -> bool:
        reading.update(await asyncio.to_thread(metrics, port))
        return reading["notifications_streams_open"] <= streams

    await wait_until(open_at_most, timeout)
    return reading


@pytest.mark.soak
@pytest.mark.timeout(300)
async def test_streams_open_and_close_for_a_minute_and_nothing_leaks(tmp_path, server_env):
    env = {**server_env, "DJANGO_SETTINGS_MODULE": "tests.soak_settings"}
    await asyncio.to_thread(manage, env, "migrate", "--noinput", "-v0")
    users = json.loads(
        (await asyncio.to_thread(manage, env, "shell", "--no-imports", "-c", CREATE_USERS)).stdout
    )
    port = free_port()
    server = daphne(port, DEMO_ASGI, env=env, cwd=ROOT).start(tmp_path / "daphne.log")
    try:
        soak = Soak(port, users)
        # Streams that stay open until MAX_STREAM_AGE (3 s) ends them.
        long_lived = [await soak.open("/sse/subscribe/announcement/") for _ in range(3)]
        started = time.monotonic()
        rounds, baseline = 0, None
        while time.monotonic() - started < SOAK_SECONDS and rounds < 500:
            await soak.round()
            rounds += 1
            if rounds == 3:
                # Once the rounds' own streams have closed (the long-lived may have expired).
                baseline = await metrics_once_open_at_most(port, len(long_lived))
        for client in long_lived:
            assert await client.read_to_end(5)
            assert client.events[-1].event == "stream_expired"
        final = await metrics_once_open_at_most(port, 0)
        growth = final["process_resident_memory_bytes"] - baseline["process_resident_memory_bytes"]
        print(
            f"\nsoak: {rounds} rounds in {time.monotonic() - started:.0f}s, {soak.counts}, "
            f"rss {baseline['process_resident_memory_bytes'] / 2**20:.1f} -> "
            f"{final['process_resident_memory_bytes'] / 2**20:.1f} MiB, "
            f"loop tasks {baseline['notifications_event_loop_tasks']:.0f} -> "
            f"{final['notifications_event_loop_tasks']:.0f}"
        )
        assert final["notifications_streams_open"] == 0
        assert (
            final["notifications_event_loop_tasks"] <= baseline["notifications_event_loop_tasks"] + TASK_SLACK
        )
        assert growth < MEMORY_GROWTH_BOUND, growth
        assert (
            final['notifications_streams_refused_total{limit="MAX_STREAMS_PER_USER"}']
            == soak.counts["limited"]
        )
        assert soak.counts["bad"] > 0 and soak.counts["events"] > 0
    finally:
        server.signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(server.wait, 15)
        output = server.output()
        server.stop()
    assert returncode == 0, output
    lines = output.splitlines()
    unexpected = [line for line in lines if not any(pattern.fullmatch(line) for pattern in EXPECTED_LINES)]
    assert unexpected == []
    assert len([line for line in lines if "Draining streams=" in line]) == 1
    assert len([line for line in lines if "Drained streams=" in line]) == 1
    assert SECRET not in output and PUBLISH_TOKEN not in output and METRICS_TOKEN not in output
