"""
A lean SSE load client: one worker process holds thousands of streams.

Workers are plain-asyncio processes driven over a multiprocessing pipe by
benchmarks/run.py (benchmarks/client_pool.py); every command is bounded in
time. This module is the worker's command loop and the figures its commands
answer; held_streams.py opens, follows and closes the streams, and
sse_stream.py reads each one.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection

from .held_streams import HeldStreams, wait_until
from .machine import raise_open_files_limit


class Worker:
    """Hold streams and answer the commands of benchmarks/run.py."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.held = HeldStreams()
        # What each command run.py sends (by name, with keyword arguments) does.
        self.commands: dict[str, Callable[..., Awaitable[dict]]] = {
            "open": self.held.open,
            "reset": self.held.reset,
            "collect": self.collect,
            "collect_tallies": self.collect_tallies,
            "watch_end": self.watch_end,
            "wait_farewells": self.wait_farewells,
            "reload_times": self.reload_times,
            "close_streams": self.held.close,
            # Close every stream and end the worker.
            "exit": self.held.close,
        }

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command, arguments = await loop.run_in_executor(None, self.connection.recv)
            result = await self.commands[command](**arguments)
            self.connection.send(result)
            if command == "exit":
                return

    async def collect(self, expected: int, timeout: float) -> dict:
        """Wait until every open stream has ``expected`` events (at most ``timeout`` s)."""
        streams = self.held.streams
        await wait_until(
            lambda: all(s.events >= expected for s in streams if s.open), time.monotonic() + timeout
        )
        return {
            "streams": len(streams),
            "open": sum(s.open for s in streams),
            "events": sum(s.events for s in streams),
            "complete": sum(s.events >= expected for s in streams),
            "latencies": self.held.latencies.tobytes(),
        }

    async def collect_tallies(self, expected: int, timeout: float) -> dict:
        """Wait until every following client has ``expected`` events (at most ``timeout`` s)."""
        tallies = self.held.tallies
        await wait_until(lambda: all(t.delivered >= expected for t in tallies), time.monotonic() + timeout)
        return {
            "clients": len(tallies),
            "connections": len(self.held.streams),
            "delivered": sum(t.delivered for t in tallies),
            "duplicates": sum(t.duplicates for t in tallies),
            "order_violations": sum(t.order_violations for t in tallies),
            "resets": sum(t.resets for t in tallies),
            "complete": sum(t.delivered >= expected for t in tallies),
            "last_at": max((t.last_at for t in tallies), default=0.0),
            "latencies": self.held.latencies.tobytes(),
        }

    async def watch_end(self, timeout: float) -> dict:
        """Wait until every stream has ended (at most ``timeout`` s); say how each ended."""
        streams = self.held.streams
        await wait_until(lambda: not any(s.open for s in streams), time.monotonic() + timeout)
        return {
            "streams": len(streams),
            "terminated": sum(s.terminated for s in streams),
            "cut": sum(s.cut for s in streams),
            "still_open": sum(s.open for s in streams),
            "farewell": sum(s.farewell for s in streams),
            "clean": sum(s.terminated and s.farewell for s in streams),
            "last_end": max((s.ended_at for s in streams), default=0.0),
        }

    async def wait_farewells(self, timeout: float) -> dict:
        """Wait until each following client had a connection end with a farewell (at most ``timeout`` s)."""
        tallies, streams = self.held.tallies, self.held.streams

        def told() -> set[int]:
            return {id(s.tally) for s in streams if s.farewell}

        await wait_until(lambda: told().issuperset(map(id, tallies)), time.monotonic() + timeout)
        return {"clients": len(tallies), "told": len(told())}

    async def reload_times(self) -> dict:
        """
        When the first connection ended with a farewell, and when a connection
        made after it was first answered by a server that was not stopping
        (no farewell on it).
        """
        streams = self.held.streams
        first_farewell = min((s.ended_at for s in streams if s.farewell), default=0.0)
        answered = [
            s.headers_at
            for s in streams
            if first_farewell and s.status == 200 and s.headers_at > first_farewell and not s.farewell
        ]
        return {"first_farewell_at": first_farewell, "first_answer_at": min(answered, default=0.0)}


def worker_main(connection: Connection) -> None:
    """Entry point of a client worker process."""
    # Thousands of streams: as many descriptors as the hard limit allows.
    raise_open_files_limit()
    asyncio.run(Worker(connection).serve())
