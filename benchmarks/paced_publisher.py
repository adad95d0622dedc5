"""
Publishing over HTTP from the run itself, one event at a time or at a fixed
rate, each payload stamped with its publish time for the clients' latencies.
benchmarks/publisher.py is the other way, the burst's: processes that
publish as fast as they can.
"""

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

from notifications.testing import http_request

from .figures import ms, percentile
from .servers import EVENT_TYPE, TOKEN

# Seconds one publish of the open loop may take at most.
PUBLISH_TIMEOUT = 60


class PacedPublisher:
    """POST to a server's /sse/publish/ endpoint from a pool of threads."""

    def __init__(self):
        # Blocking requests, many at once: publish_at_rate does not wait for answers.
        self.executor = ThreadPoolExecutor(64, thread_name_prefix="publish")

    async def publish(self, port: int, data: dict, timeout: float = 10) -> str:
        """Publish ``data`` over HTTP with the time of publishing as "t"; return the event id."""
        loop = asyncio.get_running_loop()
        data = {**data, "t": time.monotonic()}  # "t" last: the client reads up to "}".
        status, body = await loop.run_in_executor(
            self.executor,
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
