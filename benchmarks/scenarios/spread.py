"""
Spread (Daphne only): the capacity scenario's streams over two Daphne
processes on a redis-server of their own, then SIGTERM to both (drain). A
process runs Python on one core at a time: this is how a deployment drains
on both cores.
"""

from ..bench import Bench
from ..scale import shares
from ..servers import Target
from .drain import drain


async def spread(bench: Bench, target: Target) -> None:
    if target.name != "daphne":
        return  # The baselines have no way to share events between processes.
    async with bench.serving_on_redis(target, "spread") as (servers, _, _):
        opened = 0
        for server, share in zip(servers, shares(bench.scale.capacity_streams, len(servers)), strict=True):
            answer = await bench.pool.open(server.port, share, concurrency=200)
            opened += answer["opened"]
        await bench.quiet([server.process.pid for server in servers])
        await drain(bench, target, servers, opened, after=f"spread over {len(servers)} processes")
