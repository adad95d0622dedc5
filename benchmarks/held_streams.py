"""
The streams one client worker holds: opening them at a bounded concurrency,
following them (like EventSource, a following stream connects again with
Last-Event-ID when its response ends), and closing them.
"""

import asyncio
import time
from array import array
from collections import Counter
from collections.abc import Callable

from .sse_stream import Stream, Tally, request_bytes

# Seconds a following stream waits before it connects again. Shorter than
# the browser's "retry:" (2 s): the benchmark measures the server, not the
# browser's back-off.
RECONNECT_PAUSE = 0.1
# Attempts to connect again before a following stream gives up.
MAX_RECONNECT_ATTEMPTS = 50


async def wait_until(condition: Callable[[], bool], deadline: float, interval: float = 0.1) -> None:
    """Poll ``condition`` until it holds or time.monotonic() passes ``deadline``."""
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(interval)


class HeldStreams:
    """Every stream a worker opened (and each reconnection), with their latencies and tallies."""

    def __init__(self):
        self.streams: list[Stream] = []
        self.latencies = array("d")
        # Clients opened to follow, and whether their streams still reconnect.
        self.tallies: list[Tally] = []
        self.following = False
        self._reconnects: set[asyncio.Task] = set()

    async def open(
        self,
        port: int,
        path: str,
        count: int,
        concurrency: int,
        timeout: float,
        headers: dict | None = None,
        wanted_events: int = 0,
        start_at: float = 0.0,
        follow: bool = False,
    ) -> dict:
        """
        Open ``count`` streams, at most ``concurrency`` connecting at once,
        from ``start_at``; wait until each has its headers and
        ``wanted_events`` benchmark events, at most ``timeout`` seconds.
        With ``follow``, each stream is a client with a Tally that connects
        again when its response ends.
        """
        loop = asyncio.get_running_loop()
        request = request_bytes(port, path, headers)
        self.following = self.following or follow
        gate = asyncio.Semaphore(concurrency)
        failures: Counter[str] = Counter()
        opened: list[Stream] = []
        if start_at:
            await asyncio.sleep(max(start_at - time.monotonic(), 0))
        started = time.monotonic()
        deadline = started + timeout

        async def open_one() -> None:
            async with gate:
                tally, on_end = None, None
                if follow:
                    tally = Tally()
                    self.tallies.append(tally)
                    on_end = self._follower(port, path, headers)
                stream = Stream(request, self.latencies, wanted_events, tally, on_end)
                try:
                    # The loop's clock is time.monotonic().
                    async with asyncio.timeout_at(deadline):
                        await loop.create_connection(lambda: stream, "127.0.0.1", port)
                        await stream.answered
                except TimeoutError:
                    failures["timeout"] += 1
                except OSError as exc:
                    failures[type(exc).__name__] += 1
                if stream.transport is not None:
                    self.streams.append(stream)
                if stream.status == 200:
                    opened.append(stream)
                elif stream.status:
                    failures[f"status {stream.status}"] += 1
                elif stream.ended_at:
                    failures["closed before headers"] += 1

        await asyncio.gather(*(open_one() for _ in range(count)))
        await wait_until(lambda: all(s.wanted_at or not s.open for s in opened), deadline)
        missing = sum(1 for s in opened if not s.wanted_at)
        if missing:
            failures["replay incomplete"] += missing
        return {
            "opened": len(opened),
            "failures": dict(failures),
            "headers_after": [s.headers_at - started for s in opened],
            "events_after": [s.wanted_at - started for s in opened if s.wanted_at],
        }

    def _follower(self, port: int, path: str, headers: dict | None) -> Callable[[Stream], None]:
        """Return the on_end callback that connects a following stream again."""

        def on_end(stream: Stream) -> None:
            if self.following:
                task = asyncio.ensure_future(reconnect(stream))
                self._reconnects.add(task)
                task.add_done_callback(self._reconnects.discard)

        async def reconnect(ended: Stream) -> None:
            loop = asyncio.get_running_loop()
            for _ in range(MAX_RECONNECT_ATTEMPTS):
                await asyncio.sleep(RECONNECT_PAUSE)
                if not self.following:
                    return
                resume = {"Last-Event-ID": ended.event_id.decode()} if ended.event_id else {}
                request = request_bytes(port, path, {**(headers or {}), **resume})
                stream = Stream(request, self.latencies, 0, ended.tally, on_end)
                stream.event_id = ended.event_id
                try:
                    await loop.create_connection(lambda stream=stream: stream, "127.0.0.1", port)
                except OSError:
                    continue
                self.streams.append(stream)
                return

        return on_end

    async def reset(self) -> dict:
        """Forget latencies and event counts measured so far."""
        self.latencies = array("d")
        for stream in self.streams:
            stream.latencies = self.latencies
            stream.events = 0
        return {}

    async def close(self) -> dict:
        """Close every stream (following ones too: they stop reconnecting)."""
        self.following = False
        for task in self._reconnects:
            task.cancel()
        self.tallies.clear()
        for stream in self.streams:
            if stream.transport is not None:
                stream.transport.abort()
        self.streams.clear()
        return {}
