"""
The delivery guarantee (README, "Delivery guarantees") on real processes,
under a burst far beyond the channel layer's capacity.

100 clients, each one connection on two types, read while 4 publisher
processes publish 5,000 events as fast as they can; 20 clients are moved
midway, as after a network error: the connection is closed and a new one
opened (to the other process, when there are two) with the last id received.
Then every client must have every event exactly once, with ids strictly
increasing on each connection, and no stream_reset.
"""

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass

import pytest

from benchmarks import publisher
from notifications.history import EventId

from .lifecycle import TOKEN, Follower, problem_lines, publish_ids, start_daphne

TYPES = ["alpha", "beta"]
PATH = "/sse/subscribe/?types=alpha,beta"
STREAMS = 100
MOVED = 20
EVENTS = 5_000
PUBLISHERS = 4
# Seconds the publishers may take, and the last deliveries after them.
PUBLISH_TIMEOUT = 120
DELIVERY_TIMEOUT = 30

# About a minute each on two busy cores; more when other work shares them.
pytestmark = pytest.mark.timeout(PUBLISH_TIMEOUT + DELIVERY_TIMEOUT + 60)
# What channels-redis logs when group_send skipped a member at capacity.
OVERFLOW = "channels over capacity in group"


@pytest.fixture
def delivery_env(server_env):
    """The server environment with tests/delivery_settings.py: a small layer, a large history."""
    return {**server_env, "DJANGO_SETTINGS_MODULE": "tests.delivery_settings"}


@dataclass
class Burst:
    """What a burst produced: the ids publishers got back, and figures."""

    ids: list[str]
    publish_seconds: float
    # None when some stream did not get all events in time.
    last_delivery_seconds: float | None
    moved_while_publishing: int
    connections: int


async def burst(ports: list[int], start_publishers) -> tuple[list[Follower], Burst]:
    """
    Open STREAMS clients, spread over ``ports``; start the publishers with
    ``start_publishers(start_at)``; move MOVED clients midway; read until
    every client has EVENTS events, then one more published last, which
    proves nothing else was still on its way.
    """
    followers = [Follower(ports, PATH, turn=n % len(ports)) for n in range(STREAMS)]
    await asyncio.gather(*(follower.connect() for follower in followers))
    # Spread the moves over the middle half of the burst.
    move_at = {n: EVENTS // 4 + n * (EVENTS // 2) // MOVED for n in range(MOVED)}
    started = time.monotonic() + 2  # Time for the publishers to start up.
    processes = start_publishers(started)
    moved_while_publishing = 0
    # Readers stop at the latest DELIVERY_TIMEOUT after the publishers.
    deadline = started + PUBLISH_TIMEOUT + DELIVERY_TIMEOUT
    done = [0.0] * STREAMS

    async def read(number: int, follower: Follower) -> None:
        nonlocal moved_while_publishing
        if number in move_at:
            await follower.follow(lambda f: f.event_count >= move_at[number], deadline - time.monotonic())
            moved_while_publishing += any(process.poll() is None for process in processes)
            await follower.move()
        if await follower.follow(lambda f: f.event_count >= EVENTS, deadline - time.monotonic()):
            done[number] = time.monotonic()

    reading = asyncio.gather(*(read(n, f) for n, f in enumerate(followers)))
    try:
        results = await asyncio.gather(
            *(asyncio.to_thread(publisher.result, process, PUBLISH_TIMEOUT) for process in processes)
        )
        publish_seconds = time.monotonic() - started
        # What has not arrived by then is reported missing below.
        await asyncio.wait({reading}, timeout=DELIVERY_TIMEOUT)
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
    ids = [event_id for result in results for event_type in TYPES for event_id in result["ids"][event_type]]
    last = await publish_ids(ports[0], "beta", 1, start=EVENTS)
    await asyncio.gather(*(f.follow(lambda f: f.last_event_id == last[0], 10) for f in followers))
    for follower in followers:
        follower.close()
    return followers, Burst(
        ids + last,
        publish_seconds,
        max(done) - started if all(done) else None,
        moved_while_publishing,
        sum(follower.connections for follower in followers),
    )


def delivery_problems(follower: Follower, published: set[str]) -> list[str]:
    """Return how ``follower`` broke the guarantee, if it did."""
    problems = []
    for number, client in enumerate(follower.clients):
        others = Counter(event.event for event in client.events if event.event not in TYPES)
        if others:
            problems.append(f"connection {number} got {dict(others)}")
        seqs = [EventId.parse(event.id).seq for event in client.events if event.event in TYPES]
        behind = sum(1 for before, after in itertools.pairwise(seqs) if after <= before)
        if behind:
            problems.append(f"connection {number}: {behind} ids not above the one before")
    received = Counter(event.id for event in follower.events if event.event in TYPES)
    twice = sorted(event_id for event_id, count in received.items() if count > 1)
    missing = published - set(received)
    unknown = set(received) - published
    if twice:
        problems.append(f"{len(twice)} ids twice, first {twice[:3]}")
    if missing:
        problems.append(f"{len(missing)} ids missing, first {sorted(missing, key=EventId.parse)[:3]}")
    if unknown:
        problems.append(f"{len(unknown)} ids never published, first {sorted(unknown)[:3]}")
    return problems


def check_guarantee(followers: list[Follower], result: Burst) -> None:
    assert len(result.ids) == EVENTS + 1 and len(set(result.ids)) == EVENTS + 1, "every publish accepted"
    published = set(result.ids)
    problems = {n: p for n, f in enumerate(followers) if (p := delivery_problems(f, published))}
    some = dict(list(problems.items())[:5])
    assert not problems, f"{len(problems)} of {STREAMS} clients broke the guarantee, e.g. {some}"
    assert all(follower.connections >= 2 for follower in followers[:MOVED]), "moved"


def report(name: str, result: Burst) -> None:
    seconds = result.last_delivery_seconds
    last = "(not all)" if seconds is None else f"{seconds:.1f} s"
    print(
        f"{name}: {EVENTS:,} events from {PUBLISHERS} processes to {STREAMS} streams on two types: "
        f"published in {result.publish_seconds:.1f} s, last delivered {last} after publishing started; "
        f"{result.connections} connections "
        f"({MOVED} moved, {result.moved_while_publishing} of them while publishers ran)"
    )


async def test_burst_on_two_processes_and_redis_reaches_every_stream_once_in_order(
    tmp_path, delivery_env, redis_server
):
    # A process's channel holds at most 10 wake-ups: the burst overflows it.
    env = {**delivery_env, "REDIS_URL": redis_server.url, "DELIVERY_LAYER_CAPACITY": "10"}
    servers = [start_daphne(tmp_path, env), start_daphne(tmp_path, env)]
    ports = [server.port for server in servers]
    share = EVENTS // PUBLISHERS

    def start_publishers(start_at: float) -> list:
        # Two publish with the Python API straight into Redis, two over HTTP
        # to both processes.
        return [
            publisher.start(
                share,
                TYPES,
                first=n * share,
                ports=ports if n % 2 else None,
                token=TOKEN,
                start_at=start_at,
                env=env,
            )
            for n in range(PUBLISHERS)
        ]

    try:
        followers, result = await burst(ports, start_publishers)
    finally:
        for server in servers:
            server.stop()
    report("two processes on Redis", result)
    check_guarantee(followers, result)
    output = servers[0].output() + servers[1].output()
    assert OVERFLOW in output, "the burst overflowed the layer"
    assert problem_lines(output) == []


async def test_burst_on_one_process_in_memory_reaches_every_stream_once_in_order(tmp_path, delivery_env):
    # The hub's channel holds one wake-up: with 32 publishes in flight, the
    # in-memory layer drops most of them (silently, on ChannelFull).
    server = start_daphne(tmp_path, {**delivery_env, "DELIVERY_LAYER_CAPACITY": "1"})
    share = EVENTS // PUBLISHERS

    def start_publishers(start_at: float) -> list:
        # The in-memory layer and history live in the server: publish into it.
        return [
            publisher.start(
                share, TYPES, first=n * share, ports=[server.port], token=TOKEN, start_at=start_at
            )
            for n in range(PUBLISHERS)
        ]

    try:
        followers, result = await burst([server.port], start_publishers)
    finally:
        server.stop()
    report("one process in memory", result)
    check_guarantee(followers, result)
    assert problem_lines(server.output()) == []
