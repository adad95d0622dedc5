"""
The run's side of the client: worker processes of benchmarks/client.py,
started with "spawn" and driven over pipes, their answers merged.
"""

import asyncio
import multiprocessing
from collections import Counter
from multiprocessing.connection import Connection

from notifications.stop_check import cpu_seconds

from .client import worker_main
from .scale import shares
from .servers import PATH

# Seconds every client command that opens streams may take at most.
OPEN_TIMEOUT = 180


class ClientPool:
    """Worker processes of benchmarks/client.py, driven over pipes."""

    def __init__(self, workers: int):
        context = multiprocessing.get_context("spawn")
        self.connections: list[Connection] = []
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
        return shares(count, len(self.connections))

    async def call(self, command: str, per_worker: list[dict], timeout: float) -> list[dict]:
        """Send ``command`` to every worker (arguments per worker); return their answers."""
        for connection, arguments in zip(self.connections, per_worker, strict=True):
            connection.send((command, arguments))

        def answer(connection: Connection) -> dict:
            if not connection.poll(timeout):
                raise TimeoutError(f"Client worker did not answer {command!r} within {timeout}s.")
            return connection.recv()

        return await asyncio.gather(*(asyncio.to_thread(answer, c) for c in self.connections))

    async def call_all(self, command: str, answer_within: float, **arguments) -> list[dict]:
        return await self.call(command, [arguments] * len(self.connections), answer_within)

    async def open(self, port: int, count: int, concurrency: int, **arguments) -> dict:
        """Open ``count`` streams across the workers; merge their answers."""
        counts = self.split(count)
        per_worker = [
            {
                "port": port,
                "path": PATH,
                "count": share,
                "concurrency": max(concurrency // len(counts), 1),
                "timeout": OPEN_TIMEOUT,
                **arguments,
            }
            for share in counts
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
