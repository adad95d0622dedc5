"""
What every scenario of one run shares: the scale, the client workers, the
servers it starts (fresh and warmed up for each scenario), and the rows it
records.
"""

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from notifications.testing import ServerProcess, free_port

from .client_pool import ClientPool
from .machine import until_quiet
from .paced_publisher import PacedPublisher
from .scale import Scale
from .servers import Target

# The burst and spread scenarios: Daphne processes sharing a redis-server,
# one per core on 2 cores.
BURST_SETTINGS = "benchmarks.settings_burst"
PROCESSES = 2


class Bench:
    """The state of one run and the steps its scenarios share."""

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
        self.publisher = PacedPublisher()
        self.results: list[dict] = []

    def record(self, scenario: str, target: Target, **figures) -> dict:
        """Keep one row of figures; show it at once on stderr (a long run's progress)."""
        row = {"scenario": scenario, "server": target.name, **figures}
        self.results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        return row

    async def quiet(self, pids: list[int]) -> None:
        """Wait until the processes ``pids`` have done what the last step gave them, or say they did not."""
        timeout = self.scale.quiet_timeout
        if not await until_quiet(pids, timeout):
            print(f"# processes {pids} still busy after {timeout} s; measuring anyway", flush=True)

    @contextlib.asynccontextmanager
    async def serving(
        self,
        target: Target,
        env: dict | None = None,
        settings: str | None = None,
        command: Callable[[int], ServerProcess] | None = None,
    ) -> AsyncIterator[ServerProcess]:
        """
        Start a fresh server of ``target`` (or ``command(port)``), warmed up;
        stop it afterwards whatever happens.
        """
        port = free_port()
        log = self.work / f"{target.name}-{port}.log"
        if command is not None:
            server = command(port)
        else:
            settings = settings or self.daphne_settings
            server = target.server(port, self.examples_python, self.work, settings, env)
        try:
            await asyncio.to_thread(server.start, log)
            # Warm up (imports, first-request setup) before measuring the process.
            await self.pool.open(port, len(self.pool.connections), 10)
            await self.publisher.publish(port, {"seq": -1})
            await self.pool.close_streams()
            await self.quiet([server.process.pid])
            yield server
        finally:
            await self.pool.close_streams()
            if server.process is not None:
                server.stop()

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
