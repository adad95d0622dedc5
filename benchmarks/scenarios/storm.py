"""
Storm: events are published, then N clients connect at once with
Last-Event-ID; time until all have headers and their replay.
"""

import time

from ..bench import Bench
from ..figures import ms, percentile
from ..servers import Target


async def storm(bench: Bench, target: Target) -> None:
    async with bench.serving(target) as server:
        missed = bench.scale.storm_missed
        ids = [await bench.publisher.publish(server.port, {"seq": seq}) for seq in range(missed + 1)]
        clients = bench.scale.storm_clients
        opened = await bench.pool.open(
            server.port,
            clients,
            concurrency=clients,
            headers={"Last-Event-ID": ids[0]},
            wanted_events=missed if target.replay else 0,
            start_at=time.monotonic() + 0.5,
        )
        headers, replays = opened["headers_after"], opened["events_after"]
        bench.record(
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
