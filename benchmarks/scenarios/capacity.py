"""Capacity: open N idle streams; RSS and OS threads per stream; then drain with all N open."""

import time

from ..bench import Bench
from ..machine import proc_status
from ..servers import Target
from .drain import drain


async def capacity(bench: Bench, target: Target) -> None:
    async with bench.serving(target) as server:
        count = bench.scale.capacity_streams
        pid = server.process.pid
        before = proc_status(pid)
        started = time.monotonic()
        opened = await bench.pool.open(server.port, count, concurrency=200)
        open_seconds = time.monotonic() - started
        await bench.quiet([pid])
        after = proc_status(pid)
        streams = opened["opened"]
        bench.record(
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
        await drain(bench, target, [server], streams, after="capacity")
