"""
Tools to drive real servers: a raw-socket SSE client and a server process.

The test suite and the ``clean_stop_check`` command use them to see what a
browser would see on the wire: every event, the farewell, and whether the
chunked response was properly terminated or cut.
"""

import asyncio
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .asgi import Application

# EventSource ends a line at CRLF, CR or LF.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SSEEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        return json.loads(self.data)


def parse_frame(frame: str) -> tuple[SSEEvent, bool, int]:
    """
    Parse the lines of one frame as EventSource does; return the event, whether
    it has data (only then does a browser fire it), and how many comments it held.
    """
    event, data, comments = SSEEvent(), [], 0
    for line in _LINE_BREAK.split(frame):
        if line.startswith(":"):
            comments += 1
            continue
        if not line:
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event.event = value
        elif name == "id" and "\x00" not in value:
            event.id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            event.retry = int(value)
    event.data = "\n".join(data)
    return event, bool(data), comments


def parse_stream(body: bytes) -> list[SSEEvent]:
    """Return every frame of a complete SSE body that a browser would parse, events or not."""
    frames, lines = [], []
    for line in _LINE_BREAK.split(body.decode()):
        if line:
            lines.append(line)
        elif lines:
            frames.append(parse_frame("\n".join(lines))[0])
            lines = []
    return frames


@dataclass
class SSEClient:
    """
    One stream, read over a raw socket with HTTP/1.1 chunked decoding.

    ``terminated`` is True only when the response ended with the chunked
    terminator; ``cut`` when the connection closed before it.
    """

    host: str
    port: int
    path: str
    headers: dict = field(default_factory=dict)
    status: int | None = None
    response_headers: dict = field(default_factory=dict)
    events: list[SSEEvent] = field(default_factory=list)
    comments: int = 0
    retry: int | None = None
    terminated: bool = False
    cut: bool = False
    last_event_id: str | None = None
    body: bytes = b""
    _pending: bytes = field(default=b"", repr=False)

    async def connect(self, timeout: float = 10) -> None:
        """Send the request and read the status line and headers."""
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout
        )
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self._writer.drain()
        head = await asyncio.wait_for(self._reader.readuntil(b"\r\n\r\n"), timeout)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        for line in filter(None, header_lines):
            name, _, value = line.partition(":")
            self.response_headers[name.strip().lower()] = value.strip()
        self._chunked = self.response_headers.get("transfer-encoding") == "chunked"
        self._pending = b""

    async def read_until(self, predicate: Callable[["SSEClient"], bool], timeout: float) -> bool:
        """Read until ``predicate(self)`` is true or the response ends; bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate(self) and not (self.terminated or self.cut):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._read_chunk(), left)
            except TimeoutError:
                return predicate(self)
        return predicate(self)

    async def read_to_end(self, timeout: float) -> bool:
        """Read until the response ends; return whether it was terminated properly."""
        await self.read_until(lambda client: False, timeout)
        return self.terminated

    def of_type(self, event_type: str) -> list[SSEEvent]:
        return [event for event in self.events if event.event == event_type]

    def close(self) -> None:
        if getattr(self, "_writer", None) is not None:
            self._writer.close()

    async def _read_chunk(self) -> None:
        try:
            if not self._chunked:
                data = await self._reader.read(65536)
                if not data:
                    self.cut = True
                self._feed(data)
                return
            size_line = await self._reader.readuntil(b"\r\n")
            size = int(size_line.strip().split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                self.terminated = True
                return
            data = await self._reader.readexactly(size + 2)
            self._feed(data[:-2])
        except (asyncio.IncompleteReadError, ConnectionError):
            self.cut = True

    def feed(self, data: bytes) -> None:
        """Parse ``data`` as if read from the wire (for stream bodies driven in-process)."""
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        self.body += data
        self._pending += data
        *frames, self._pending = self._pending.replace(b"\r\n", b"\n").split(b"\n\n")
        for frame in frames:
            self._parse(frame.decode())

    def _parse(self, frame: str) -> None:
        event, has_data, comments = parse_frame(frame)
        self.comments += comments
        if event.id is not None:
            self.last_event_id = event.id
        if event.retry is not None:
            self.retry = event.retry
        if has_data:
            self.events.append(event)


async def open_streams(
    port: int, path: str, count: int, headers: dict | None = None, concurrency: int = 200
) -> list[SSEClient]:
    """Open ``count`` streams (at most ``concurrency`` connecting at once)."""
    gate = asyncio.Semaphore(concurrency)

    async def open_one():
        client = SSEClient("127.0.0.1", port, path, dict(headers or {}))
        async with gate:
            await client.connect()
            # Wait for the first frame: the stream is registered by then.
            await client.read_until(lambda c: c.retry is not None, 10)
        return client

    return await asyncio.gather(*(open_one() for _ in range(count)))


def http_request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None, timeout: float = 10
) -> tuple[int, bytes]:
    """Send one HTTP request to 127.0.0.1 and return (status, body)."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class ServerProcess:
    """
    A server started as a child process, with SIGINT at its default
    disposition (Twisted ignores Ctrl+C when SIGINT is inherited ignored).
    Only this process (and its own group) is ever signalled.
    """

    def __init__(self, argv: list[str], port: int, env: dict | None = None, cwd: Path | None = None):
        self.argv = argv
        self.port = port
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self.log_path = None
        self.process: subprocess.Popen | None = None

    def start(self, log_path: Path, timeout: float = 30) -> "ServerProcess":
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            self.wait_listening(timeout)
        except BaseException:
            # Callers stop a server they got back; one that never listened is ours to end.
            self.stop(timeout=2)
            raise
        return self

    def wait_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Server exited with {self.process.returncode}:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"Server did not listen on port {self.port} within {timeout}s:\n{self.output()}")

    def signal(self, signum: int, group: bool = False) -> float:
        """Send ``signum`` (to the process group when ``group``); return when."""
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        return time.monotonic()

    def wait(self, timeout: float) -> int | None:
        """Return the server's exit status once it exits, or None after ``timeout`` seconds."""
        # Popen.wait(timeout) looks every 50 ms; a pidfd wakes up at the exit.
        if self.process.returncode is None and hasattr(os, "pidfd_open"):
            try:
                pidfd = os.pidfd_open(self.process.pid)
            except OSError:
                pass  # Exited and reaped already, or no pidfd here: Popen finds out.
            else:
                try:
                    # poll(), not select(): a client with thousands of streams holds high fds.
                    exited = select.poll()
                    exited.register(pidfd, select.POLLIN)
                    if not exited.poll(timeout * 1000):
                        return None
                finally:
                    os.close(pidfd)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10) -> None:
        """End the server (and its process group) if it is still running."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        else:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return Path(self.log_path).read_text(errors="replace")


def daphne(
    port: int,
    application: str,
    env: dict | None = None,
    cwd: Path | None = None,
    options: tuple[str, ...] = (),
) -> ServerProcess:
    """A stock ``daphne [options] <application>`` (``module:attribute``) on 127.0.0.1:``port``."""
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *options, application]
    return ServerProcess(argv, port, env, cwd)


def runserver(
    port: int, reload: bool = True, env: dict | None = None, cwd: Path | None = None
) -> ServerProcess:
    """``manage.py runserver`` on 127.0.0.1:``port``, with or without the autoreloader."""
    argv = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"]
    if not reload:
        argv.append("--noreload")
    return ServerProcess(argv, port, env, cwd)


@dataclass
class ASGIResponse:
    """What an ASGI application answered: status, headers, body so far, and whether it ended."""

    status: int
    headers: dict[str, str]
    body: bytes
    ended: bool

    def frames(self) -> list[SSEEvent]:
        return parse_stream(self.body)


def http_scope(
    path: str,
    *,
    method: str = "GET",
    query_string: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    root_path: str = "",
) -> dict:
    """Return the ASGI scope of an HTTP/1.1 request from 127.0.0.1 to ``testserver``."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": root_path,
        "query_string": query_string,
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def asgi_request(
    application: "Application",
    path: str,
    *,
    method: str = "GET",
    query_string: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    until: Callable[[bytes], bool] | None = None,
    timeout: float = 5,
) -> ASGIResponse:
    """
    Send one HTTP request to ``application`` in this event loop and read the
    answer until it ends, or, for a stream, until ``until(body)`` is true;
    then disconnect like a browser closing the page.
    """
    from asgiref.testing import ApplicationCommunicator

    scope = http_scope(path, method=method, query_string=query_string, headers=headers)
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(timeout)
    response = ASGIResponse(
        start["status"],
        {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in start["headers"]},
        b"",
        False,
    )
    deadline = time.monotonic() + timeout
    try:
        while not response.ended and not (until is not None and until(response.body)):
            message = await communicator.receive_output(max(deadline - time.monotonic(), 0.01))
            response.body += message.get("body", b"")
            response.ended = not message.get("more_body", False)
    finally:
        # Also when the caller cancels: the application must see the client leave.
        if not communicator.future.done():
            await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait(timeout)
    return response
