"""
Burst (Daphne only): two Daphne processes on a redis-server of their own, N
streams on two types that follow (connect again with Last-Event-ID), events
published as fast as they can from 4 processes (benchmarks/publisher.py);
delivered, duplicates, order violations, stream_reset events, seconds to the
last delivery.
"""

import asyncio
import time

from notifications.stop_check import cpu_seconds

from .. import publisher
from ..bench import BURST_SETTINGS, Bench
from ..figures import delivery, ms, percentile, sorted_latencies, tally_totals
from ..paced_publisher import PUBLISH_TIMEOUT
from ..scale import shares
from ..servers import Target

BURST_TYPES = ["alpha", "beta"]
BURST_PATH = "/sse/subscribe/?types=alpha,beta"
BURST_PUBLISHERS = 4


async def burst(bench: Bench, target: Target) -> None:
    if target.name != "daphne":
        return  # The baselines have no way to share events between processes.
    print(f"# burst: {BURST_PUBLISHERS} publisher processes")
    async with bench.serving_on_redis(target, "burst") as (servers, env, redis_pid):
        streams, events = bench.scale.burst_streams, bench.scale.burst_events
        for server, share in zip(servers, shares(streams, len(servers)), strict=True):
            await bench.pool.open(server.port, share, concurrency=200, path=BURST_PATH, follow=True)
        pids = [server.process.pid for server in servers]
        await bench.quiet([*pids, redis_pid])
        await bench.pool.call_all("reset", 30)
        cpu_before = sum(map(cpu_seconds, pids)), cpu_seconds(redis_pid)
        # Time for the publishers to start up; they publish from then on.
        start_at = time.monotonic() + 3
        processes = [
            publisher.start(
                count,
                BURST_TYPES,
                first=index * (events // BURST_PUBLISHERS),
                start_at=start_at,
                env={"DJANGO_SETTINGS_MODULE": BURST_SETTINGS, **env},
            )
            for index, count in enumerate(shares(events, BURST_PUBLISHERS))
        ]
        published = await asyncio.gather(
            *(asyncio.to_thread(publisher.result, process, PUBLISH_TIMEOUT * 10) for process in processes)
        )
        answers = await bench.pool.call_all(
            "collect_tallies",
            bench.scale.burst_timeout + 30,
            expected=events,
            timeout=bench.scale.burst_timeout,
        )
        cpu = sum(map(cpu_seconds, pids)) - cpu_before[0]
        redis_cpu = cpu_seconds(redis_pid) - cpu_before[1]
        totals = tally_totals(answers)
        delivered = totals["delivered"]
        ordered = sorted_latencies(answers)
        last_at = totals["last_at"]
        accepted = sum(len(ids) for result in published for ids in result["ids"].values())
        bench.record(
            "burst",
            target,
            streams=totals["clients"],
            events=accepted,
            publishers=BURST_PUBLISHERS,
            processes=len(servers),
            publish_seconds=round(max(result["seconds"] for result in published), 2),
            **delivery(totals, accepted),
            complete_streams=totals["complete"],
            connections=totals["connections"],
            last_delivery_seconds=round(last_at - start_at, 2) if last_at else None,
            p50_ms=ms(percentile(ordered, 0.50)),
            p99_ms=ms(percentile(ordered, 0.99)),
            server_cpu_us_per_delivery=round(1e6 * cpu / delivered, 1) if delivered else None,
            redis_cpu_seconds=round(redis_cpu, 2),
        )
