"""
One SSE response read with minimal parsing, and the Tally of a client that
follows its stream across connections.

notifications.testing.SSEClient parses every event into objects, which is
right for tests and too slow for 10,000 streams on two cores. A Stream here
decodes HTTP/1.1 chunked framing and only scans the payload for what the
benchmark needs: the publish timestamp of each benchmark event (``"t":`` is
the last key of its JSON payload), the farewell event, and whether the
response ended with the chunked terminator or was cut. A stream opened to
``follow`` also reads each event's id into a Tally (exactly once, in order?).
"""

import asyncio
import time
from array import array
from collections.abc import Callable

# Last key of every benchmark payload: {"seq": n, ..., "t": <monotonic time of publish>}.
# CLOCK_MONOTONIC is system-wide on Linux, so times compare across processes.
TIMESTAMP = b'"t":'
FAREWELL = b"server_shutdown"
RESET = b"event: stream_reset"
ID = b"id: "


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
    """Return the GET request of an EventSource for ``path``, with ``headers`` added."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Stream(asyncio.Protocol):
    """One SSE response, read with minimal parsing."""

    def __init__(
        self,
        request: bytes,
        latencies: array,
        wanted_events: int,
        tally: Tally | None = None,
        on_end: Callable[["Stream"], None] | None = None,
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
