"""
Fanout: streams on one event type (1,000 then 5,000 in a full run), events
published over HTTP at a fixed rate; delivery ratio, publish-to-parsed
latency, server CPU; then drain with the last count open.
"""

import time

from notifications.stop_check import cpu_seconds

from ..bench import Bench
from ..figures import ms, percentile, sorted_latencies
from ..machine import runqueue_wait_seconds
from ..servers import Target
from .drain import drain


async def fanout(bench: Bench, target: Target) -> None:
    scale, pool = bench.scale, bench.pool
    async with bench.serving(target) as server:
        pid = server.process.pid
        open_now = 0
        for count in scale.fanout_streams:
            opened = await pool.open(server.port, count - open_now, concurrency=200)
            open_now += opened["opened"]
            await bench.quiet([pid])
            await pool.call_all("reset", 30)
            cpu_before, started = cpu_seconds(pid), time.monotonic()
            client_cpu_before = pool.cpu_seconds()
            wait_before = runqueue_wait_seconds(pid)
            published = await bench.publisher.publish_at_rate(
                server.port, scale.fanout_events, scale.fanout_rate
            )
            answers = await pool.call_all(
                "collect",
                scale.collect_timeout + 30,
                expected=scale.fanout_events,
                timeout=scale.collect_timeout,
            )
            elapsed = time.monotonic() - started
            cpu = cpu_seconds(pid) - cpu_before
            client_cpu = pool.cpu_seconds() - client_cpu_before
            waited = runqueue_wait_seconds(pid) - wait_before
            ordered = sorted_latencies(answers)
            events = sum(a["events"] for a in answers)
            # A publish that timed out may still have been accepted: count every event sent.
            expected = open_now * scale.fanout_events
            bench.record(
                "fanout",
                target,
                streams=open_now,
                events=scale.fanout_events,
                rate=scale.fanout_rate,
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
        await drain(bench, target, [server], open_now, after="fanout")
