"""
Several Daphne processes and a worker on one Redis (REDIS_URL), as deployed:
events from any process reach every stream once and in order, clients move
between processes without losing events, and Redis may restart under open
streams.
"""

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from notifications.history import EventId
from notifications.testing import SSEClient, open_streams

from .conftest import ROOT
from .lifecycle import Follower, follow_all, problem_lines, publish_http, publish_ids, start_daphne
from .redis_server import RedisServer
from .support import wait_until

PATH = "/sse/subscribe/announcement/"


def announcement_ids(client) -> list[str]:
    return [event.id for event in client.of_type("announcement")]


def publish_from_worker(env, count: int) -> list[str]:
    """Publish from a separate Django process with the sync API, as a task worker would."""
    code = (
        "from notifications import publish; "
        f"print(','.join(publish('announcement', {{'worker': n}}) for n in range({count})))"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1].split(",")


@pytest.fixture
def redis_env(server_env, redis_server):
    return {**server_env, "REDIS_URL": redis_server.url}


async def test_events_from_any_process_reach_every_stream_once_in_order(tmp_path, redis_env):
    first, second = start_daphne(tmp_path, redis_env), start_daphne(tmp_path, redis_env)
    try:
        on_first = await open_streams(first.port, PATH, 20)
        on_second = await open_streams(second.port, PATH, 20)
        ids = await publish_ids(second.port, "announcement", 3)
        ids += await publish_ids(first.port, "announcement", 3, start=3)
        ids += await asyncio.to_thread(publish_from_worker, redis_env, 3)
        ids += await publish_ids(second.port, "announcement", 1, start=9)

        clients = on_first + on_second
        await asyncio.gather(*(c.read_until(lambda c: c.last_event_id == ids[-1], 10) for c in clients))
        for client in clients:
            assert announcement_ids(client) == ids
            client.close()
        parsed = [tuple(map(int, event_id.split("-")[1:])) for event_id in ids]
        assert parsed == sorted(parsed) and len(set(ids)) == len(ids), "ids grow across processes"
        assert len({event_id.split("-")[0] for event_id in ids}) == 1, "one epoch for all processes"
    finally:
        first.stop()
        second.stop()
    assert problem_lines(first.output() + second.output()) == []


async def test_clients_of_a_killed_process_resume_on_the_other_and_lose_nothing(tmp_path, redis_env):
    doomed, survivor = start_daphne(tmp_path, redis_env), start_daphne(tmp_path, redis_env)
    followers = [Follower([doomed.port, survivor.port]) for _ in range(30)]
    try:
        for follower in followers:
            follower.turn = followers.index(follower) % 2  # half on each process
            await follower.connect()
        ids = await publish_ids(survivor.port, "announcement", 3)
        await follow_all(followers, ids[-1])

        doomed.signal(signal.SIGKILL, group=True)
        assert await asyncio.to_thread(doomed.wait, 10) == -signal.SIGKILL
        ids += await publish_ids(survivor.port, "announcement", 3, start=3)
        await follow_all(followers, ids[-1])
        ids += await publish_ids(survivor.port, "announcement", 3, start=6)
        await follow_all(followers, ids[-1])

        moved = [follower for follower in followers if follower.connections == 2]
        assert len(moved) == 15, "the killed process's clients reconnected once, to the survivor"
        for follower in followers:
            assert follower.ids() == ids
            assert follower.ids("stream_reset") == []
            follower.close()
    finally:
        doomed.stop()
        survivor.stop()
    assert problem_lines(survivor.output()) == []


async def publish_when_back(port: int, count: int) -> list[str]:
    """Publish ``count`` events over HTTP, retrying (bounded) while Redis is still coming back."""
    ids = []
    for _ in range(200):
        status, body = await asyncio.to_thread(publish_http, port, "announcement", {"n": len(ids)})
        if status == 202:
            ids.append(body["id"])
        if len(ids) == count:
            return ids
        await asyncio.sleep(0.05 if status == 202 else 0.1)
    raise AssertionError(f"publishing did not recover: {status} {body}")


async def run_through_a_redis_restart(tmp_path, server_env, persistent: bool):
    """
    Two processes with 10 streams each and 3 events; then Redis goes down
    (checking what publishers, new streams and open streams see meanwhile)
    and comes back; then 3 more events. Return the streams and both id lists.
    """
    redis_server = RedisServer(tmp_path / "restarting-redis", persistent=persistent).start()
    env = {**server_env, "REDIS_URL": redis_server.url, "NOTIFICATIONS_HEARTBEAT": "0.5"}
    first, second = start_daphne(tmp_path, env), start_daphne(tmp_path, env)
    try:
        clients = await open_streams(first.port, PATH, 10) + await open_streams(second.port, PATH, 10)
        before = await publish_ids(first.port, "announcement", 3)
        await asyncio.gather(*(c.read_until(lambda c: c.last_event_id == before[-1], 10) for c in clients))

        redis_server.stop()
        status, body = await asyncio.to_thread(publish_http, second.port, "announcement", {"lost": True})
        assert status == 503, body
        assert body.startswith("The Redis history at ") and "is unavailable" in body, body
        late = SSEClient("127.0.0.1", first.port, PATH, {"Last-Event-ID": before[0]})
        await late.connect()
        assert await late.read_to_end(10), "a stream that cannot catch up ends cleanly at once"
        assert (late.retry, late.events) == (2000, [])
        late.close()
        heartbeats = [client.comments for client in clients]
        await asyncio.gather(*(c.read_until(lambda c: False, 1.5) for c in clients))
        assert all(c.comments >= seen + 2 for c, seen in zip(clients, heartbeats, strict=True)), "heartbeats"
        redis_server.start()

        after = await publish_when_back(second.port, 3)
        await asyncio.gather(*(c.read_until(lambda c: c.last_event_id == after[-1], 15) for c in clients))
        if not persistent:
            after += await publish_ids(second.port, "announcement", 1, start=3)
            await asyncio.gather(*(c.read_until(lambda c: c.last_event_id == after[-1], 10) for c in clients))
        for client in clients:
            assert not (client.terminated or client.cut), "no stream ended"
            client.close()
        return clients, before, after
    finally:
        first.stop()
        second.stop()
        redis_server.stop()
        for server in (first, second):
            # Django logs each 503 answered during the outage as an error; nothing else.
            problems = problem_lines(server.output())
            assert [line for line in problems if "Service Unavailable: /sse/publish/" not in line] == []


async def test_redis_restart_with_persistence_keeps_streams_and_loses_nothing(tmp_path, server_env):
    clients, before, after = await run_through_a_redis_restart(tmp_path, server_env, persistent=True)
    for client in clients:
        assert announcement_ids(client) == before + after
        assert client.of_type("stream_reset") == []


async def test_redis_restart_without_persistence_resets_streams_in_band(tmp_path, server_env):
    # Redis lost history and epoch: each stream is told in-band to refetch
    # its state, at the new head (which may already cover events published
    # since Redis came back), then goes on with the events after it.
    clients, before, after = await run_through_a_redis_restart(tmp_path, server_env, persistent=False)
    for client in clients:
        [reset] = client.of_type("stream_reset")
        assert reset.json() == {"reason": "history_unavailable"}
        reset_at = EventId.parse(reset.id)
        assert reset_at.epoch == EventId.parse(after[0]).epoch != EventId.parse(before[0]).epoch
        position = client.events.index(reset)
        assert [event.id for event in client.events[:position]] == before
        resumed = [event_id for event_id in after if EventId.parse(event_id).seq > reset_at.seq]
        assert [event.id for event in client.events[position + 1 :]] == resumed
        assert resumed[-1] == after[-1], "delivery resumed"


async def test_five_hundred_streams_opening_at_once_stay_within_the_history_pool(
    tmp_path, redis_env, redis_server
):
    server = start_daphne(tmp_path, redis_env)
    try:
        ids = await publish_ids(server.port, "announcement", 3)
        peak, opening = [], asyncio.Event()

        async def watch_history_connections():
            while not opening.is_set():
                peak.append(await asyncio.to_thread(redis_server.clients_named, "notifications-history"))
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch_history_connections())
        clients = await open_streams(server.port, PATH, 500, {"Last-Event-ID": ids[0]}, concurrency=500)
        opening.set()
        await watcher

        print(f"500 streams with Last-Event-ID: at most {max(peak)} history connections")
        assert 0 < max(peak) <= 10, "RedisHistory's default max_connections"
        for client in clients:
            assert announcement_ids(client) == ids[1:]
            assert not (client.terminated or client.cut)
        more = await publish_ids(server.port, "announcement", 1, start=3)
        await asyncio.gather(*(c.read_until(lambda c: c.last_event_id == more[-1], 10) for c in clients))
        assert all(announcement_ids(client) == ids[1:] + more for client in clients)
        for client in clients:
            client.close()
    finally:
        server.stop()
    assert problem_lines(server.output()) == []


async def published_more(publisher: asyncio.Task, ids: list[str], count: int) -> None:
    """Wait until ``publisher``, appending to ``ids``, has published ``count`` more events."""
    target = len(ids) + count
    await wait_until(lambda: len(ids) >= target or publisher.done(), 15)
    if publisher.done():
        publisher.result()  # Raises what stopped it.
        raise AssertionError("the publisher stopped early")


async def test_rolling_restart_of_both_processes_loses_nothing(tmp_path, redis_env, redis_server):
    env = {**redis_env, "NOTIFICATIONS_HEARTBEAT": "0.5"}
    servers = [start_daphne(tmp_path, env), start_daphne(tmp_path, env)]
    ports = [server.port for server in servers]
    followers = [Follower(ports) for _ in range(40)]
    for number, follower in enumerate(followers):
        follower.turn = number % 2
        await follower.connect()
    ids: list[str] = []
    publishing_to = [ports[1]]
    last_id: list[str] = []  # Set once publishing has stopped.

    async def publish_steadily():
        for n in range(2000):
            if last_id:
                return
            status, body = await asyncio.to_thread(publish_http, publishing_to[0], "announcement", {"n": n})
            assert status == 202, body
            ids.append(body["id"])
            await asyncio.sleep(0.02)

    publisher = asyncio.create_task(publish_steadily())
    reading = asyncio.gather(
        *(f.follow(lambda f: last_id and f.last_event_id == last_id[0], 60) for f in followers)
    )
    try:
        for index in (0, 1):
            # As a load balancer would: send traffic elsewhere, then stop
            # once events go there (the publish under way has ended).
            publishing_to[0] = ports[1 - index]
            await published_more(publisher, ids, 3)
            servers[index].signal(signal.SIGTERM)
            assert await asyncio.to_thread(servers[index].wait, 15) == 0
            assert problem_lines(servers[index].output()) == []
            servers[index] = await asyncio.to_thread(start_daphne, tmp_path, env, ports[index])
        await published_more(publisher, ids, 3)
        last_id.append("stopping")
        await publisher
        last_id[0] = ids[-1]
        assert all(await reading)
        # One more stream on each new process: exactly two group members
        # remain, so the two stopped processes left the group.
        extra = await open_streams(ports[0], PATH, 1) + await open_streams(ports[1], PATH, 1)
        with redis_server.client() as client:
            assert client.zcard("asgi:group:notifications.announcement") == 2
        for client in extra:
            client.close()
    finally:
        last_id.append("stopped")
        for server in servers:
            server.stop()

    print(f"rolling restart: {len(ids)} events, {sum(f.connections for f in followers)} connections")
    for follower in followers:
        assert follower.ids() == ids, "every event once, in order, across reconnects"
        assert follower.ids("stream_reset") == []
        assert follower.connections >= 2
        follower.close()
