"""
A lean SSE load client: one worker process holds thousands of streams.

notifications.testing.SSEClient parses every event into objects, which is
right for tests and too slow for 10,000 streams on two cores. A Stream here
decodes HTTP/1.1 chunked framing and only scans the payload for what the
benchmark needs: the publish timestamp of each benchmark event (``"t":`` is
the last key of its JSON payload), the farewell event, and whether the
response ended with the chunked terminator or was cut. A stream opened to
``follow`` also reads each event's id into a Tally (exactly once, in order?)
and, like EventSource, connects again with Last-Event-ID when its response
ends.

Workers are plain-asyncio processes driven over a multiprocessing pipe by
benchmarks/run.py; every command is bounded in time.
"""

import asyncio
import resource
import time
from array import array
from collections import Counter
from multiprocessing.connection import Connection

# Last key of every benchmark payload: {"seq": n, ..., "t": <monotonic time of publish>}.
# CLOCK_MONOTONIC is system-wide on Linux, so times compare across processes.
TIMESTAMP = b'"t":'
FAREWELL = b"server_shutdown"
RESET = b"event: stream_reset"
ID = b"id: "
# Seconds a following stream waits before it connects again. Shorter than
# the browser's "retry:" (2 s): the benchmark measures the server, not the
# browser's back-off.
RECONNECT_PAUSE = 0.1
# Attempts to connect again before a following stream gives up.
MAX_RECONNECT_ATTEMPTS = 50


class Tally:
    """What one client received across its connections, by event seq."""

    __slots__ = ("seen", "last_seq", "delivered", "duplicates", "order_violations", "resets", "last_at")

    def __init__(self):
        # One byte per seq: 10,000 events to 1,000 clients is 10 MB, where
        # sets of ints would take hundreds.
        self.seen = bytearray()
        self.last_seq = 0
        self.delivered = 0
        self.duplicates = 0
        self.order_violations = 0
        self.resets = 0
        self.last_at = 0.0

    def count(self, event_id: bytes, now: float) -> None:
        seq = int(event_id.rpartition(b"-")[2])
        if seq >= len(self.seen):
            self.seen.extend(bytes(seq + 1 - len(self.seen) + 1024))
        if self.seen[seq]:
            self.duplicates += 1
        else:
            self.seen[seq] = 1
            self.delivered += 1
            self.last_at = now
        if seq <= self.last_seq:
            self.order_violations += 1
        self.last_seq = seq


def request_bytes(port: int, path: str, headers: dict | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Stream(asyncio.Protocol):
    """One SSE response, read with minimal parsing."""

    def __init__(
        self, request: bytes, latencies: array, wanted_events: int, tally: Tally | None = None, on_end=None
    ):
        self.request = request
        self.latencies = latencies
        self.wanted_events = wanted_events
        self.tally = tally
        # Called with this stream when its connection ends (to follow it).
        self.on_end = on_end
        # The id of the last frame that had one: the browser's Last-Event-ID.
        self.event_id = b""
        self.transport: asyncio.Transport | None = None
        self.status = 0
        self.headers_at = 0.0
        self.wanted_at = 0.0
        self.ended_at = 0.0
        self.events = 0
        self.farewell = False
        self.terminated = False
        self.cut = False
        self.head = b""
        self.chunked = False
        self.raw = b""
        self.pending = b""
        self.data_left = 0
        self.crlf_left = 0
        self.answered = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.headers_at:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end == -1:
                return
            head, data, self.head = self.head[:end], self.head[end + 4 :], b""
            self.status = int(head.split(b" ", 2)[1])
            self.chunked = b"transfer-encoding: chunked" in head.lower()
            self.headers_at = now
            if not self.wanted_events:
                self.wanted_at = now
            if not self.answered.done():
                self.answered.set_result(None)
        if self.chunked:
            data = self._unchunk(data)
        if data:
            self._scan(data, now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ended_at:
            self.ended_at = time.monotonic()
            self.cut = not self.terminated
        if not self.answered.done():
            self.answered.set_result(None)
        if self.on_end is not None:
            self.on_end(self)

    @property
    def open(self) -> bool:
        return not self.ended_at

    def _unchunk(self, data: bytes) -> bytes:
        buffer = self.raw + data if self.raw else data
        self.raw = b""
        payload, position, size = [], 0, len(buffer)
        while position < size:
            if self.data_left:
                take = min(self.data_left, size - position)
                payload.append(buffer[position : position + take])
                position += take
                self.data_left -= take
            elif self.crlf_left:
                take = min(self.crlf_left, size - position)
                position += take
                self.crlf_left -= take
            else:
                line_end = buffer.find(b"\r\n", position)
                if line_end == -1:
                    self.raw = buffer[position:]
                    break
                chunk_size = int(buffer[position:line_end].split(b";")[0], 16)
                position = line_end + 2
                if chunk_size == 0:
                    self.terminated = True
                    self.ended_at = time.monotonic()
                    break
                self.data_left, self.crlf_left = chunk_size, 2
        return b"".join(payload)

    def _scan(self, data: bytes, now: float) -> None:
        # Scan whole lines only: a timestamp split across reads is read next time.
        text = self.pending + data if self.pending else data
        last_line_end = text.rfind(b"\n")
        if last_line_end == -1:
            self.pending = text
            return
        lines, self.pending = text[: last_line_end + 1], text[last_line_end + 1 :]
        tally, start = self.tally, 0
        found = lines.find(TIMESTAMP)
        while found != -1:
            if tally is not None:
                self._read_id(lines, start, found)
                tally.count(self.event_id, now)
            value_end = lines.find(b"}", found)
            self.latencies.append(now - float(lines[found + 4 : value_end]))
            self.events += 1
            start = value_end
            found = lines.find(TIMESTAMP, value_end)
        if tally is not None:
            # A position frame, or the id line of an event whose data comes next.
            self._read_id(lines, start, len(lines))
            if RESET in lines:
                tally.resets += lines.count(RESET)
        if not self.wanted_at and self.events >= self.wanted_events:
            self.wanted_at = now
        if not self.farewell and FAREWELL in lines:
            self.farewell = True

    def _read_id(self, lines: bytes, start: int, end: int) -> None:
        """Keep the last id line of ``lines[start:end]``, if there is one."""
        # Lines start after a newline: an id field is at the start of one.
        at = lines.rfind(ID, start, end)
        while at > 0 and lines[at - 1] != 10:
            at = lines.rfind(ID, start, at)
        if at != -1:
            self.event_id = lines[at + len(ID) : lines.index(b"\n", at)]


class Worker:
    """Hold streams and answer the commands of benchmarks/run.py."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.streams: list[Stream] = []
        self.latencies = array("d")
        # Clients opened to follow, and whether their streams still reconnect.
        self.tallies: list[Tally] = []
        self.following = False
        self._reconnects: set[asyncio.Task] = set()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command, arguments = await loop.run_in_executor(None, self.connection.recv)
            result = await getattr(self, command)(**arguments)
            self.connection.send(result)
            if command == "exit":
                return

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
        await self._until(lambda: all(s.wanted_at or not s.open for s in opened), deadline)
        missing = sum(1 for s in opened if not s.wanted_at)
        if missing:
            failures["replay incomplete"] += missing
        return {
            "opened": len(opened),
            "failures": dict(failures),
            "headers_after": [s.headers_at - started for s in opened],
            "events_after": [s.wanted_at - started for s in opened if s.wanted_at],
        }

    async def reset(self) -> dict:
        """Forget latencies and event counts measured so far."""
        self.latencies = array("d")
        for stream in self.streams:
            stream.latencies = self.latencies
            stream.events = 0
        return {}

    async def collect(self, expected: int, timeout: float) -> dict:
        """Wait until every open stream has ``expected`` events (at most ``timeout`` s)."""
        await self._until(
            lambda: all(s.events >= expected for s in self.streams if s.open),
            time.monotonic() + timeout,
        )
        return {
            "streams": len(self.streams),
            "open": sum(s.open for s in self.streams),
            "events": sum(s.events for s in self.streams),
            "complete": sum(s.events >= expected for s in self.streams),
            "latencies": self.latencies.tobytes(),
        }

    def _follower(self, port: int, path: str, headers: dict | None):
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

    async def collect_tallies(self, expected: int, timeout: float) -> dict:
        """Wait until every following client has ``expected`` events (at most ``timeout`` s)."""
        await self._until(
            lambda: all(t.delivered >= expected for t in self.tallies), time.monotonic() + timeout
        )
        tallies = self.tallies
        return {
            "clients": len(tallies),
            "connections": len(self.streams),
            "delivered": sum(t.delivered for t in tallies),
            "duplicates": sum(t.duplicates for t in tallies),
            "order_violations": sum(t.order_violations for t in tallies),
            "resets": sum(t.resets for t in tallies),
            "complete": sum(t.delivered >= expected for t in tallies),
            "last_at": max((t.last_at for t in tallies), default=0.0),
            "latencies": self.latencies.tobytes(),
        }

    async def watch_end(self, timeout: float) -> dict:
        """Wait until every stream has ended (at most ``timeout`` s); say how each ended."""
        await self._until(lambda: not any(s.open for s in self.streams), time.monotonic() + timeout)
        return {
            "streams": len(self.streams),
            "terminated": sum(s.terminated for s in self.streams),
            "cut": sum(s.cut for s in self.streams),
            "still_open": sum(s.open for s in self.streams),
            "farewell": sum(s.farewell for s in self.streams),
            "clean": sum(s.terminated and s.farewell for s in self.streams),
            "last_end": max((s.ended_at for s in self.streams), default=0.0),
        }

    async def close_streams(self) -> dict:
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

    async def exit(self) -> dict:
        """Close every stream and end the worker."""
        return await self.close_streams()

    @staticmethod
    async def _until(condition, deadline: float, interval: float = 0.1) -> None:
        while not condition() and time.monotonic() < deadline:
            await asyncio.sleep(interval)


def worker_main(connection: Connection) -> None:
    """Entry point of a client worker process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(Worker(connection).serve())
