"""
Benchmark notifications under stock Daphne against two baselines, in one run.

    python -m benchmarks.run [--quick] [--servers daphne,fastapi,sse-starlette]
                             [--scenarios capacity,fanout,storm,burst,spread]

Servers: ``daphne project.asgi:application`` (in-memory layer); the
hand-made FastAPI service (examples/fastapi_sse) and an sse-starlette service
(examples/sse_starlette_app), both on uvicorn from examples/setup.sh's venv.

Scenarios (each on a fresh server process):

- capacity: open N idle streams; RSS and OS threads per stream; then SIGTERM
  with all N open (drain).
- fanout: 1,000 then 5,000 streams on one event type, events published over
  HTTP at a fixed rate with a timestamp in the payload; delivery ratio,
  publish-to-parsed latency, server CPU; then SIGTERM with 5,000 open (drain).
- storm: events are published, then N clients connect at once with
  Last-Event-ID: time until all have headers and their replay.
- burst (daphne only): two Daphne processes on a redis-server of its own,
  N streams on two types, events published as fast as they can from 4
  processes (benchmarks/publisher.py); delivered, duplicates, order
  violations, stream_reset events, seconds to the last delivery.
- spread (daphne only): the capacity scenario's N streams over two Daphne
  processes on a redis-server of their own, then SIGTERM to both (drain):
  a process runs Python on one core at a time, so this is how a deployment
  drains on both cores.

The client is benchmarks/client.py in several worker processes. Machines are
shared: read the ratios against the baselines, not absolute times. Prints a
table per scenario, the targets, then one JSON line per measurement.
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from notifications.stop_check import children_cpu_seconds, cpu_seconds
from notifications.testing import ServerProcess, daphne, free_port, http_request

from . import publisher
from .client import worker_main

# The demo project's ASGI application, as daphne takes it.
DEMO_ASGI = "project.asgi:application"

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TOKEN = "bench-token-0123456789abcdef0123456789"
EVENT_TYPE = "announcement"
PATH = f"/sse/subscribe/{EVENT_TYPE}/"
# Seconds every client command and server stop may take at most.
OPEN_TIMEOUT = 180
DRAIN_WAIT = 30
PUBLISH_TIMEOUT = 60
BASELINES = ("fastapi", "sse-starlette")
# The burst: streams on two types, on two Daphne processes sharing a Redis.
BURST_SETTINGS = "benchmarks.settings_burst"
BURST_TYPES = ["alpha", "beta"]
BURST_PATH = "/sse/subscribe/?types=alpha,beta"
BURST_PUBLISHERS = 4
# Daphne processes of the burst and spread scenarios: one per core on 2 cores.
PROCESSES = 2


@dataclass(frozen=True)
class Scale:
    capacity_streams: int
    fanout_streams: tuple[int, ...]
    fanout_events: int
    fanout_rate: float
    storm_clients: int
    storm_missed: int
    # Seconds to wait for the last events after the last publish.
    collect_timeout: float
    # Seconds to let a server settle after streams opened or closed.
    settle: float = 1.0
    burst_streams: int = 1_000
    burst_events: int = 10_000
    # Seconds to wait for the burst's last deliveries after the last publish.
    burst_timeout: float = 600


FULL = Scale(10_000, (1_000, 5_000), 200, 50, 1_000, 20, 90)
QUICK = Scale(300, (100, 300), 50, 50, 100, 10, 10, burst_streams=100, burst_events=1_000, burst_timeout=60)


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    replay: bool

    def server(
        self,
        port: int,
        examples_python: str | None,
        work: Path,
        daphne_settings: str,
        env: dict | None = None,
    ) -> ServerProcess:
        if self.name == "daphne":
            env = {
                "DJANGO_SETTINGS_MODULE": daphne_settings,
                "DJANGO_DEBUG": "0",
                "DJANGO_DB_PATH": str(work / "db.sqlite3"),
                "NOTIFICATIONS_PUBLISH_TOKEN": TOKEN,
                # The embedded default without the database: layer and history in memory.
                "NOTIFICATIONS_HISTORY_BACKEND": "notifications.history.memory.InMemoryHistory",
                "PYTHONPATH": str(ROOT),
                **(env or {}),
            }
            return daphne(port, DEMO_ASGI, env=env, cwd=ROOT)
        module = {"fastapi": "fastapi_sse.app:app", "sse-starlette": "sse_starlette_app.app:app"}[self.name]
        argv = [examples_python, "-m", "uvicorn", "--app-dir", str(EXAMPLES), module]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
        # The hand-made service never stops without it (see examples/README.md).
        argv += ["--timeout-graceful-shutdown", "5"]
        return ServerProcess(argv, port, env={"NOTIFICATIONS_PUBLISH_TOKEN": TOKEN}, cwd=ROOT)


TARGETS = {
    "daphne": Target("daphne", "notifications on stock Daphne 4.2.3, in-memory layer", replay=True),
    "fastapi": Target("fastapi", "hand-made FastAPI + uvicorn (examples/fastapi_sse)", replay=False),
    "sse-starlette": Target(
        "sse-starlette", "sse-starlette defaults + uvicorn (examples/sse_starlette_app)", replay=True
    ),
}


# --- the server process, from /proc ---------------------------------------


def proc_status(pid: int) -> dict:
    """Return the VmRSS (KiB) and thread count of ``pid``."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "Threads"):
            fields[name] = int(value.split()[0])
    return {"rss_kib": fields["VmRSS"], "threads": fields["Threads"]}


def runqueue_wait_seconds(pid: int) -> float:
    """Return how long the main thread of ``pid`` has waited for a CPU while runnable."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def log_problems(output: str) -> dict:
    """Count tracebacks and ERROR lines; keep what our server says about its drain."""
    markers = ("Draining streams", "Drained streams", "Stopping requests", "Cannot drain", "The drain failed")
    said = [line for line in output.splitlines() if any(marker in line for marker in markers)]
    return {
        "tracebacks": output.count("Traceback"),
        "error_lines": sum("ERROR" in line for line in output.splitlines()),
        "server_said": said,
    }


# --- client workers ----------------------------------------------------------


class ClientPool:
    """Worker processes of benchmarks/client.py, driven over pipes."""

    def __init__(self, workers: int):
        context = multiprocessing.get_context("spawn")
        self.connections = []
        self.processes = []
        for _ in range(workers):
            parent, child = context.Pipe()
            process = context.Process(target=worker_main, args=(child,), daemon=True)
            process.start()
            self.connections.append(parent)
            self.processes.append(process)

    def cpu_seconds(self) -> float:
        """Return the CPU seconds used by all workers so far."""
        return sum(cpu_seconds(process.pid) for process in self.processes)

    def split(self, count: int) -> list[int]:
        workers = len(self.connections)
        return [count // workers + (index < count % workers) for index in range(workers)]

    async def call(self, command: str, per_worker: list[dict], timeout: float) -> list[dict]:
        """Send ``command`` to every worker (arguments per worker); return their answers."""
        for connection, arguments in zip(self.connections, per_worker, strict=True):
            connection.send((command, arguments))

        def answer(connection):
            if not connection.poll(timeout):
                raise TimeoutError(f"Client worker did not answer {command!r} within {timeout}s.")
            return connection.recv()

        return await asyncio.gather(*(asyncio.to_thread(answer, c) for c in self.connections))

    async def call_all(self, command: str, answer_within: float, **arguments) -> list[dict]:
        return await self.call(command, [arguments] * len(self.connections), answer_within)

    async def open(self, port: int, count: int, concurrency: int, **arguments) -> dict:
        """Open ``count`` streams across the workers; merge their answers."""
        shares = self.split(count)
        per_worker = [
            {
                "port": port,
                "path": PATH,
                "count": share,
                "concurrency": max(concurrency // len(shares), 1),
                "timeout": OPEN_TIMEOUT,
                **arguments,
            }
            for share in shares
        ]
        answers = await self.call("open", per_worker, OPEN_TIMEOUT + 30)
        failures = Counter()
        for answer in answers:
            failures.update(answer["failures"])
        return {
            "opened": sum(a["opened"] for a in answers),
            "failures": dict(failures),
            "headers_after": sorted(t for a in answers for t in a["headers_after"]),
            "events_after": sorted(t for a in answers for t in a["events_after"]),
        }

    async def watch_end(self, timeout: float) -> dict:
        answers = await self.call_all("watch_end", timeout + 30, timeout=timeout)
        merged = {key: sum(a[key] for a in answers) for key in answers[0] if key != "last_end"}
        merged["last_end"] = max(a["last_end"] for a in answers)
        return merged

    async def close_streams(self) -> None:
        await self.call_all("close_streams", 60)

    def stop(self) -> None:
        for connection in self.connections:
            try:
                connection.send(("exit", {}))
            except OSError:
                pass
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)


# --- measurements --------------------------------------------------------------


def percentile(ordered: list[float] | array, fraction: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


class Bench:
    def __init__(
        self,
        scale: Scale,
        pool: ClientPool,
        examples_python: str | None,
        work: Path,
        daphne_settings: str = "project.settings",
    ):
        self.scale = scale
        self.daphne_settings = daphne_settings
        self.pool = pool
        self.examples_python = examples_python
        self.work = work
        self.publisher = ThreadPoolExecutor(64, thread_name_prefix="publish")
        self.results: list[dict] = []

    def record(self, scenario: str, target: Target, **figures) -> dict:
        row = {"scenario": scenario, "server": target.name, **figures}
        self.results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        return row

    @contextlib.asynccontextmanager
    async def serving(
        self, target: Target, env: dict | None = None, settings: str | None = None
    ) -> AsyncIterator[ServerProcess]:
        """Start a fresh server of ``target``, warmed up; stop it afterwards whatever happens."""
        port = free_port()
        log = self.work / f"{target.name}-{port}.log"
        server = target.server(port, self.examples_python, self.work, settings or self.daphne_settings, env)
        try:
            await asyncio.to_thread(server.start, log)
            # Warm up (imports, first-request setup) before measuring the process.
            await self.pool.open(port, len(self.pool.connections), 10)
            await self.publish(port, {"seq": -1})
            await self.pool.close_streams()
            await asyncio.sleep(self.scale.settle)
            yield server
        finally:
            await self.pool.close_streams()
            if server.process is not None:
                server.stop()

    async def publish(self, port: int, data: dict, timeout: float = 10) -> str:
        """Publish ``data`` over HTTP with the time of publishing as "t"; return the event id."""
        loop = asyncio.get_running_loop()
        data = {**data, "t": time.monotonic()}  # "t" last: the client reads up to "}".
        status, body = await loop.run_in_executor(
            self.publisher,
            lambda: http_request(
                port,
                "POST",
                f"/sse/publish/{EVENT_TYPE}/",
                json.dumps(data).encode(),
                {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                timeout,
            ),
        )
        if status != 202:
            raise RuntimeError(f"Publish failed with {status}: {body[:200]!r}")
        return json.loads(body)["id"]

    async def drain(self, target: Target, servers: list[ServerProcess], streams: int, after: str) -> dict:
        """
        SIGTERM the servers with ``streams`` open in all; time until the last
        exited, see how streams ended.
        """
        # The servers' CPU from the signal to their exit: unlike the exit
        # time, it does not grow when other work shares the cores.
        cpu_before = sum(cpu_seconds(server.process.pid) for server in servers) + children_cpu_seconds()
        sent_at = min(server.signal(signal.SIGTERM) for server in servers)
        ends = asyncio.ensure_future(self.pool.watch_end(DRAIN_WAIT))
        waits = (asyncio.to_thread(server.wait, DRAIN_WAIT) for server in servers)
        returncodes = await asyncio.gather(*waits)
        exited = None not in returncodes
        exit_after = time.monotonic() - sent_at if exited else None
        exit_cpu = children_cpu_seconds() - cpu_before
        ended = await ends
        problems = log_problems("".join(server.output() for server in servers))
        return self.record(
            "drain",
            target,
            after=after,
            streams=streams,
            exit_seconds=exit_after,
            exit_cpu_seconds=round(exit_cpu, 2) if exited else None,
            returncode=max(returncodes, key=abs) if exited else None,
            clean=ended["clean"],
            terminated=ended["terminated"],
            farewell=ended["farewell"],
            cut=ended["cut"],
            still_open=ended["still_open"],
            last_stream_end_seconds=ended["last_end"] - sent_at if ended["last_end"] else None,
            **problems,
        )

    async def capacity(self, target: Target) -> None:
        async with self.serving(target) as server:
            await self._capacity(target, server)

    async def _capacity(self, target: Target, server: ServerProcess) -> None:
        count = self.scale.capacity_streams
        pid = server.process.pid
        before = proc_status(pid)
        started = time.monotonic()
        opened = await self.pool.open(server.port, count, concurrency=200)
        open_seconds = time.monotonic() - started
        await asyncio.sleep(2 * self.scale.settle)
        after = proc_status(pid)
        streams = opened["opened"]
        self.record(
            "capacity",
            target,
            streams=streams,
            failures=opened["failures"],
            open_seconds=round(open_seconds, 2),
            rss_kib_before=before["rss_kib"],
            rss_kib_after=after["rss_kib"],
            rss_kib_per_stream=(after["rss_kib"] - before["rss_kib"]) / streams if streams else None,
            threads_before=before["threads"],
            threads_after=after["threads"],
            threads_per_stream=(after["threads"] - before["threads"]) / streams if streams else None,
        )
        await self.drain(target, [server], streams, after="capacity")

    async def fanout(self, target: Target) -> None:
        async with self.serving(target) as server:
            await self._fanout(target, server)

    async def _fanout(self, target: Target, server: ServerProcess) -> None:
        pid = server.process.pid
        open_now = 0
        for count in self.scale.fanout_streams:
            opened = await self.pool.open(server.port, count - open_now, concurrency=200)
            open_now += opened["opened"]
            await asyncio.sleep(self.scale.settle)
            await self.pool.call_all("reset", 30)
            cpu_before, started = cpu_seconds(pid), time.monotonic()
            client_cpu_before = self.pool.cpu_seconds()
            wait_before = runqueue_wait_seconds(pid)
            published = await self.publish_at_rate(
                server.port, self.scale.fanout_events, self.scale.fanout_rate
            )
            answers = await self.pool.call_all(
                "collect",
                self.scale.collect_timeout + 30,
                expected=self.scale.fanout_events,
                timeout=self.scale.collect_timeout,
            )
            elapsed = time.monotonic() - started
            cpu = cpu_seconds(pid) - cpu_before
            client_cpu = self.pool.cpu_seconds() - client_cpu_before
            waited = runqueue_wait_seconds(pid) - wait_before
            latencies = array("d")
            for answer in answers:
                latencies.frombytes(answer["latencies"])
            ordered = sorted(latencies)
            events = sum(a["events"] for a in answers)
            # A publish that timed out may still have been accepted: count every event sent.
            expected = open_now * self.scale.fanout_events
            self.record(
                "fanout",
                target,
                streams=open_now,
                events=self.scale.fanout_events,
                rate=self.scale.fanout_rate,
                **published,
                delivered=events,
                delivery_ratio=events / expected if expected else None,
                complete_streams=sum(a["complete"] for a in answers),
                p50_ms=ms(percentile(ordered, 0.50)),
                p95_ms=ms(percentile(ordered, 0.95)),
                p99_ms=ms(percentile(ordered, 0.99)),
                max_ms=ms(ordered[-1] if ordered else None),
                server_cpu_percent=round(100 * cpu / elapsed, 1),
                # CPU cost per delivered event: comparable even when the machine is busy.
                server_cpu_us_per_delivery=round(1e6 * cpu / events, 1) if events else None,
                client_cpu_percent=round(100 * client_cpu / elapsed, 1),
                server_cpu_wait_percent=round(100 * waited / elapsed, 1),
                open_failures=opened["failures"],
            )
        await self.drain(target, [server], open_now, after="fanout")

    async def publish_at_rate(self, port: int, events: int, rate: float) -> dict:
        """
        Publish ``events`` events at ``rate`` per second without waiting for
        answers (an open loop, like independent publishers). Return the
        seconds until all were answered, how many failed, and how long the
        publish requests took.
        """
        started = time.monotonic()

        async def timed_publish(data: dict) -> float:
            sent = time.monotonic()
            await self.publish(port, data, timeout=PUBLISH_TIMEOUT)
            return time.monotonic() - sent

        tasks = []
        for seq in range(events):
            await asyncio.sleep(max(started + seq / rate - time.monotonic(), 0))
            tasks.append(asyncio.ensure_future(timed_publish({"seq": seq, "text": "x" * 64})))
        answers = await asyncio.gather(*tasks, return_exceptions=True)
        durations = sorted(answer for answer in answers if not isinstance(answer, BaseException))
        return {
            "publish_seconds": round(time.monotonic() - started, 2),
            "publish_failures": events - len(durations),
            "publish_p50_ms": ms(percentile(durations, 0.5)),
            "publish_p99_ms": ms(percentile(durations, 0.99)),
        }

    @contextlib.asynccontextmanager
    async def serving_on_redis(self, target: Target, scenario: str) -> AsyncIterator[tuple[list, dict, int]]:
        """
        Start PROCESSES fresh Daphne servers sharing a redis-server of their
        own; yield them, their environment and the redis-server's pid.
        """
        # The tests' redis-server: loopback only, a free port, nothing on disk.
        from tests.redis_server import RedisServer

        redis = RedisServer(self.work / f"redis-{scenario}").start()
        env = {"REDIS_URL": redis.url}
        print(
            f"# {scenario}: {PROCESSES} daphne processes with {BURST_SETTINGS} on a redis-server "
            "of their own (channels_redis layer, RedisHistory)"
        )
        try:
            async with contextlib.AsyncExitStack() as stack:
                servers = [
                    await stack.enter_async_context(self.serving(target, env, BURST_SETTINGS))
                    for _ in range(PROCESSES)
                ]
                yield servers, env, redis.process.process.pid
        finally:
            redis.stop()

    async def burst(self, target: Target) -> None:
        if target.name != "daphne":
            return  # The baselines have no way to share events between processes.
        print(f"# burst: {BURST_PUBLISHERS} publisher processes")
        async with self.serving_on_redis(target, "burst") as (servers, env, redis_pid):
            await self._burst(target, servers, env, redis_pid)

    async def _burst(self, target: Target, servers: list[ServerProcess], env: dict, redis_pid: int) -> None:
        streams, events = self.scale.burst_streams, self.scale.burst_events
        for index, server in enumerate(servers):
            share = streams // len(servers) + (index < streams % len(servers))
            await self.pool.open(server.port, share, concurrency=200, path=BURST_PATH, follow=True)
        await asyncio.sleep(self.scale.settle)
        await self.pool.call_all("reset", 30)
        pids = [server.process.pid for server in servers]
        cpu_before = sum(map(cpu_seconds, pids)), cpu_seconds(redis_pid)
        # Time for the publishers to start up; they publish from then on.
        start_at = time.monotonic() + 3
        share = events // BURST_PUBLISHERS
        processes = [
            publisher.start(
                share + (index < events % BURST_PUBLISHERS),
                BURST_TYPES,
                first=index * share,
                start_at=start_at,
                env={"DJANGO_SETTINGS_MODULE": BURST_SETTINGS, **env},
            )
            for index in range(BURST_PUBLISHERS)
        ]
        published = await asyncio.gather(
            *(asyncio.to_thread(publisher.result, process, PUBLISH_TIMEOUT * 10) for process in processes)
        )
        answers = await self.pool.call_all(
            "collect_tallies",
            self.scale.burst_timeout + 30,
            expected=events,
            timeout=self.scale.burst_timeout,
        )
        cpu = sum(map(cpu_seconds, pids)) - cpu_before[0]
        redis_cpu = cpu_seconds(redis_pid) - cpu_before[1]
        counted = [key for key in answers[0] if key not in ("last_at", "latencies")]
        totals = {key: sum(answer[key] for answer in answers) for key in counted}
        delivered = totals["delivered"]
        latencies = array("d")
        for answer in answers:
            latencies.frombytes(answer["latencies"])
        ordered = sorted(latencies)
        last_at = max(a["last_at"] for a in answers)
        accepted = sum(len(ids) for result in published for ids in result["ids"].values())
        expected = totals["clients"] * accepted
        self.record(
            "burst",
            target,
            streams=totals["clients"],
            events=accepted,
            publishers=BURST_PUBLISHERS,
            processes=len(servers),
            publish_seconds=round(max(result["seconds"] for result in published), 2),
            delivered=delivered,
            delivery_ratio=delivered / expected if expected else None,
            duplicates=totals["duplicates"],
            order_violations=totals["order_violations"],
            resets=totals["resets"],
            complete_streams=totals["complete"],
            connections=totals["connections"],
            last_delivery_seconds=round(last_at - start_at, 2) if last_at else None,
            p50_ms=ms(percentile(ordered, 0.50)),
            p99_ms=ms(percentile(ordered, 0.99)),
            server_cpu_us_per_delivery=round(1e6 * cpu / delivered, 1) if delivered else None,
            redis_cpu_seconds=round(redis_cpu, 2),
        )

    async def spread(self, target: Target) -> None:
        if target.name != "daphne":
            return  # The baselines have no way to share events between processes.
        async with self.serving_on_redis(target, "spread") as (servers, _, _):
            count = self.scale.capacity_streams
            opened = 0
            for index, server in enumerate(servers):
                share = count // len(servers) + (index < count % len(servers))
                answer = await self.pool.open(server.port, share, concurrency=200)
                opened += answer["opened"]
            await asyncio.sleep(2 * self.scale.settle)
            await self.drain(target, servers, opened, after=f"spread over {len(servers)} processes")

    async def storm(self, target: Target) -> None:
        async with self.serving(target) as server:
            await self._storm(target, server)

    async def _storm(self, target: Target, server: ServerProcess) -> None:
        missed = self.scale.storm_missed
        ids = [await self.publish(server.port, {"seq": seq}) for seq in range(missed + 1)]
        clients = self.scale.storm_clients
        opened = await self.pool.open(
            server.port,
            clients,
            concurrency=clients,
            headers={"Last-Event-ID": ids[0]},
            wanted_events=missed if target.replay else 0,
            start_at=time.monotonic() + 0.5,
        )
        headers, replays = opened["headers_after"], opened["events_after"]
        self.record(
            "storm",
            target,
            clients=clients,
            missed_events=missed,
            connected=opened["opened"],
            failures=opened["failures"],
            headers_p50_ms=ms(percentile(headers, 0.5)),
            all_headers_ms=ms(headers[-1] if headers else None),
            all_replayed_ms=ms(replays[-1] if replays and target.replay else None),
            replayed=len(replays) if target.replay else None,
        )


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


# --- report --------------------------------------------------------------------


COLUMNS = {
    "capacity": ["streams", "open_seconds", "rss_kib_per_stream", "threads_per_stream", "failures"],
    "fanout": [
        "streams",
        "delivery_ratio",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
        "server_cpu_us_per_delivery",
        "server_cpu_percent",
        "server_cpu_wait_percent",
        "publish_p50_ms",
        "publish_p99_ms",
        "publish_seconds",
    ],
    "drain": [
        "after",
        "streams",
        "exit_seconds",
        "exit_cpu_seconds",
        "clean",
        "cut",
        "still_open",
        "last_stream_end_seconds",
        "tracebacks",
        "error_lines",
    ],
    "storm": ["clients", "connected", "headers_p50_ms", "all_headers_ms", "all_replayed_ms", "failures"],
    "burst": [
        "streams",
        "events",
        "delivery_ratio",
        "duplicates",
        "order_violations",
        "resets",
        "connections",
        "publish_seconds",
        "last_delivery_seconds",
        "p99_ms",
        "server_cpu_us_per_delivery",
    ],
}
# Figures compared as "daphne / baseline" ratios (lower is better for each).
RATIOS = {
    "capacity": ["rss_kib_per_stream"],
    "fanout": ["p50_ms", "p99_ms", "server_cpu_us_per_delivery"],
    "drain": ["exit_seconds"],
    "storm": ["all_headers_ms", "all_replayed_ms"],
    "burst": [],
}


def cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "0"
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_table(title: str, headers: list[str], rows: list[list]) -> None:
    cells = [[cell(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n## {title}")
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def report(results: list[dict]) -> None:
    for scenario, columns in COLUMNS.items():
        rows = [r for r in results if r["scenario"] == scenario]
        if not rows:
            continue
        print_table(
            scenario, ["server", *columns], [[r["server"], *(r.get(c) for c in columns)] for r in rows]
        )
        ratio_rows = []
        for ours in (r for r in rows if r["server"] == "daphne"):
            for baseline in (r for r in rows if r["server"] in BASELINES):
                if scale_of(baseline) != scale_of(ours):
                    continue
                ratio_rows.append(
                    [f"daphne / {baseline['server']}", scale_of(ours)]
                    + [ratio(ours.get(name), baseline.get(name)) for name in RATIOS[scenario]]
                )
        if ratio_rows:
            print_table(
                f"{scenario}: ratios (below 1: daphne better)", ["", "n", *RATIOS[scenario]], ratio_rows
            )
    print_targets(results)


def scale_of(row: dict) -> str:
    """Return what makes two measurements comparable: their scale (and phase)."""
    return " after ".join(str(row[key]) for key in ("streams", "clients", "after") if key in row)


def ratio(ours, theirs) -> float | None:
    if ours is None or not theirs:
        return None
    return round(ours / theirs, 3)


def find(results: list[dict], scenario: str, server: str, size_key: str, size: int | None = None) -> dict:
    rows = [r for r in results if r["scenario"] == scenario and r["server"] == server]
    if size is not None:
        rows = [r for r in rows if r.get(size_key) == size]
    return rows[-1] if rows else {}


def print_targets(results: list[dict]) -> None:
    fan_sizes = sorted({r["streams"] for r in results if r["scenario"] == "fanout"})
    # The drain targets are for one process (spread has two).
    single_process_drains = {
        r["streams"]: r
        for r in results
        if r["scenario"] == "drain" and r["server"] == "daphne" and r["after"] in ("capacity", "fanout")
    }
    rows = []
    if fan_sizes:
        big, small = fan_sizes[-1], fan_sizes[0]
        ours_big = find(results, "fanout", "daphne", "streams", big)
        ours_small = find(results, "fanout", "daphne", "streams", small)
        theirs_big = find(results, "fanout", "sse-starlette", "streams", big)
        theirs_small = find(results, "fanout", "sse-starlette", "streams", small)
        ratio_delivered = ours_big.get("delivery_ratio")
        rows.append([f"100 % delivery at {big:,} streams", ratio_delivered, ratio_delivered == 1])
        big_ratio = ratio(ours_big.get("p99_ms"), theirs_big.get("p99_ms"))
        rows.append(
            [
                f"p99 at {big:,} <= 0.35 x sse-starlette",
                big_ratio,
                big_ratio is not None and big_ratio <= 0.35,
            ]
        )
        small_ratio = ratio(ours_small.get("p99_ms"), theirs_small.get("p99_ms"))
        rows.append(
            [
                f"p99 at {small:,} <= 0.7 x sse-starlette",
                small_ratio,
                small_ratio is not None and small_ratio <= 0.7,
            ]
        )
        publish_p99 = ours_small.get("publish_p99_ms")
        rows.append(
            [
                f"HTTP publish p99 at {small:,} streams <= 50 ms",
                publish_p99,
                publish_p99 is not None and publish_p99 <= 50,
            ]
        )
    capacity = find(results, "capacity", "daphne", "streams")
    if capacity:
        rows.append(
            [
                "<= 24 KiB RSS per idle stream",
                capacity["rss_kib_per_stream"],
                (capacity["rss_kib_per_stream"] or 99) <= 24,
            ]
        )
        rows.append(
            [
                "no OS thread per stream",
                capacity["threads_per_stream"],
                (capacity["threads_per_stream"] or 0) < 0.01,
            ]
        )
        rows.append([f"{capacity['streams']:,} streams held", capacity["streams"], not capacity["failures"]])
    for size, drained in sorted(single_process_drains.items()):
        clean = drained["clean"] == size and drained["exit_seconds"] is not None
        rows.append(
            [
                f"{size:,} streams drained cleanly, exit <= 2 s",
                f"{drained['clean']:,} clean, last ended {cell(drained['last_stream_end_seconds'])} s, "
                f"exit {cell(drained['exit_seconds'])} s",
                clean and drained["exit_seconds"] <= 2,
            ]
        )
    ours_storm, theirs_storm = (
        find(results, "storm", "daphne", "clients"),
        find(results, "storm", "sse-starlette", "clients"),
    )
    if ours_storm:
        storm_ratio = ratio(ours_storm.get("all_replayed_ms"), theirs_storm.get("all_replayed_ms"))
        rows.append(
            [
                f"storm of {ours_storm['clients']:,} <= 1 x sse-starlette (all replayed)",
                storm_ratio,
                storm_ratio is not None and storm_ratio <= 1 and not ours_storm["failures"],
            ]
        )
    burst = find(results, "burst", "daphne", "streams")
    if burst:
        rows.append(
            [
                f"burst of {burst['events']:,} to {burst['streams']:,}: every event once, in order",
                f"{cell(burst['delivery_ratio'])} delivered, {burst['duplicates']} twice, "
                f"{burst['order_violations']} out of order, {burst['resets']} resets",
                burst["delivery_ratio"] == 1 and not (burst["duplicates"] or burst["order_violations"]),
            ]
        )
    if rows:
        print_table("targets", ["target", "measured", "met"], rows)


# --- main ----------------------------------------------------------------------


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (servers started later inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def examples_python(venv: str | None) -> str:
    """Build (if needed) the baselines' venv with examples/setup.sh; return its python."""
    command = [str(EXAMPLES / "setup.sh")] + ([venv] if venv else [])
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=600).stdout.strip()


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small numbers, about a minute")
    parser.add_argument("--servers", default="daphne,fastapi,sse-starlette")
    parser.add_argument("--scenarios", default="capacity,fanout,storm,burst,spread")
    parser.add_argument("--workers", type=int, default=4, help="client worker processes")
    parser.add_argument("--examples-venv", help="venv of the baselines (default: examples/.venv)")
    parser.add_argument(
        "--daphne-settings",
        default="project.settings",
        help="settings module of the Daphne server, e.g. benchmarks.settings_no_middleware",
    )
    return parser.parse_args(argv)


async def run(arguments: argparse.Namespace, scale: Scale | None = None) -> list[dict]:
    """Run the chosen scenarios against the chosen servers; print and return the measurements."""
    scale = scale or (QUICK if arguments.quick else FULL)
    targets = [TARGETS[name] for name in arguments.servers.split(",")]
    scenarios = arguments.scenarios.split(",")
    limit = raise_open_files_limit()
    needed = max(scale.capacity_streams, *scale.fanout_streams) + 200
    if limit < needed:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {limit} is below the {needed} descriptors needed.")
    python = examples_python(arguments.examples_venv) if any(t.name in BASELINES for t in targets) else None
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {'quick' if arguments.quick else 'full'} run, "
        f"{arguments.workers} client workers, load average {load_average()}"
    )
    for target in targets:
        print(f"# {target.name}: {target.description}")
    print(f"# daphne settings: {arguments.daphne_settings}")
    pool = ClientPool(arguments.workers)
    try:
        with tempfile.TemporaryDirectory(prefix="notifications-bench-") as work:
            bench = Bench(scale, pool, python, Path(work), arguments.daphne_settings)
            for scenario in scenarios:
                for target in targets:
                    await getattr(bench, scenario)(target)
    finally:
        pool.stop()
    print(f"\n# finished {datetime.now(UTC):%H:%M} UTC, load average {load_average()}")
    report(bench.results)
    print("\n## JSON")
    for row in bench.results:
        print(json.dumps(row))
    return bench.results


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_arguments(argv)))


if __name__ == "__main__":
    main()
