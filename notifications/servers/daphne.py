"""
Daphne adapter: drain streams before Daphne stops, and close the connection
of a client that stops reading.

Daphne internals this module relies on (checked by problems(), reported by
system check notifications.W201; tested with Daphne 4.2 and Twisted 26.10):

- ``daphne.server.Server.kill_all_applications``: Server.run() registers it
  as a Twisted "before shutdown" trigger and it cancels every application at
  once. Daphne has no ASGI lifespan (https://github.com/django/daphne/pull/570)
  and Twisted runs "before" triggers back to back, so a trigger of our own
  could not run first: install() takes the method over, drains, and calls
  Daphne's own for whatever is left.
- ``Server.connections[protocol]["application_instance"]``: the future of a
  connection's application (Server.create_application()); waited for so that
  Django finishes each request and sends request_finished.
- ``Server.protocol_connected()``: wrapped during a drain so connections
  accepted later also close after their response.
- ``Server.handle_reply()``: wrapped to apply backpressure.py; Daphne never
  holds an application back (https://github.com/django/daphne/issues/170).
- ``daphne.http_protocol.WebRequest._response_started`` and ``.finished``
  (daphne/http_protocol.py, handle_reply()): whether a response is under way.
- ``twisted.web.http.HTTPChannel.persistent``: set to False so a connection
  closes once its response is finished (Twisted then sends
  "Connection: close").
- ``twisted.internet.abstract.FileDescriptor.dataBuffer``, ``.offset`` and
  ``._tempDataLen``: the bytes a connection has not sent yet.
- ``twisted.internet.tcp.Connection.writeSomeData()``, ``.connected``,
  ``.disconnecting`` and ``.TLS``: an event stream's connection sends at once
  when nothing waits unsent (see _EagerWrites). Twisted's write() only
  buffers and registers the socket for writability, then unregisters it once
  the buffer is flushed: two epoll_ctl calls and a reactor turn per write,
  which was about 45 % of the CPU of a 1,000-stream fan-out. The event
  stream's WebRequest and its connection get a subclass of their own class
  (``__class__`` assignment), which marks them without growing their dicts.
- ``Server.create_application()``: replaced by a copy that gives the
  application a ReceiveQueue instead of an ``asyncio.Queue()``; Daphne only
  calls its ``put_nowait()`` and the application its ``get()``, and an idle
  asyncio.Queue holds four deques, about 3 KB of each open stream's 24 KB.
- ``daphne.server.twisted_loop``: the asyncio loop the reactor runs on.
- ``Server.run()`` and ``Server.endpoints``: the Twisted endpoint
  descriptions Server.run() listens on (daphne/endpoints.py builds
  ``tcp:port=P:interface=H`` and ``unix:PATH`` without a backlog, so
  Twisted's 50 applies; see NOTIFICATIONS['LISTEN_BACKLOG']). A description
  that already names a backlog, or another kind of endpoint, is left as is.
- ``Server.verbosity`` and ``Server.http_factory`` (optional, skipped when
  absent): at verbosity 0 or 1 Server.run() sends Twisted's log nowhere, so
  during a drain the factory's ``log()`` (twisted.web.http.HTTPFactory) is
  replaced by a no-op instead of formatting a line per request for nothing.
- ``Server.action_logger`` and ``daphne.access.AccessLogGenerator.stream``
  (optional, skipped when absent): Daphne writes each access line with its
  own write(), a system call per finished request when the stream is
  unbuffered (PYTHONUNBUFFERED, usual in containers) or line-buffered (a
  ``--access-log`` file). During a drain the lines of one turn of the event
  loop are written together, unchanged and in order.
- ``AccessLogGenerator.write_entry()`` (optional, skipped unless it writes
  the same lines as AccessLines.write_entry() for sample entries, checked
  when a drain starts; Python 3.12 compiles its format string into pieces,
  so reading its code cannot tell): formats each line's date with
  ``strftime()``; during a drain the lines of one second share one, the
  lines themselves unchanged (7 % of the drain's CPU at 10,000 streams, half
  of it that ``strftime()``).
- ``twisted.internet.abstract.FileDescriptor.doWrite()``, ``.disconnecting``,
  ``.stopReading()``, ``._tempDataBuffer`` and
  ``tcp.Connection.connectionLost()``: during a drain an event stream's
  connection sends its last bytes and closes in the next turn of the loop,
  the way Twisted's reactor does once the socket is writable, without
  registering the socket for writability first (see _EagerWrites).
- ``tcp.Connection.socket`` (optional, skipped when absent): corked before
  those last bytes (Linux's TCP_CORK), so they leave with the close's FIN in
  one TCP segment instead of two.
- ``daphne.http_protocol.http`` and Twisted's
  ``twisted.python.deprecate._ModuleProxy._module`` (optional, skipped when
  ``http`` is not such a proxy): Daphne calls Twisted's request methods
  through its module global ``http`` (``http.Request.write(self, body)``
  for every chunk, and ``.__init__``, ``.finish``, ``.connectionLost`` once
  a request). Since https://github.com/twisted/twisted/pull/12171
  deprecated one of its names, ``twisted.web.http`` is a deprecation proxy
  whose every attribute lookup runs Python code (about 4 µs); Twisted
  removed its own lookups (https://github.com/twisted/twisted/issues/12200),
  Daphne's remain. install() points Daphne's global at the module behind
  the proxy. Everyone else still imports the proxy, with its warnings.
"""

import asyncio
import datetime
import functools
import inspect
import io
import logging
import socket
import sys
import time
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from .. import backpressure, lifecycle
from ..conf import setting
from ..protocol import farewell
from . import code_mentions

if TYPE_CHECKING:
    # Annotations only: this module is imported where Daphne is not installed.
    from threading import Thread

    from daphne.http_protocol import WebRequest
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol
    from twisted.internet.defer import Deferred

logger = logging.getLogger(__name__)

# What happens when an internal is missing (system check W201).
FALLBACK = "a stop cuts every open stream, as stock Daphne does"
# Daphne versions this adapter was written and tested against.
TESTED_DAPHNE = "4."
# Seconds to let closed connections flush their last bytes to the client.
FLUSH_TIMEOUT = 2
# Servers that are draining: their new responses close their connection. A
# plain set, as every write of an event stream asks whether it is empty (a
# WeakSet answers in Python code); a server drains once, as its process stops.
_draining: "set[Server]" = set()


def problems() -> list[str]:
    """Return the internals listed above that this Daphne or Twisted lacks."""
    try:
        from daphne import http_protocol, server
        from twisted.internet import abstract, tcp
        from twisted.web import http
    except ImportError as error:
        return [f"cannot import {error.name}"]
    # Daphne's own, also once install() has replaced it.
    create = inspect.unwrap(getattr(server.Server, "create_application", None) or (lambda: None))
    expected = {
        "daphne.server.twisted_loop": hasattr(server, "twisted_loop"),
        "Server.kill_all_applications": hasattr(server.Server, "kill_all_applications"),
        "Server.protocol_connected": hasattr(server.Server, "protocol_connected"),
        "Server.run() listening on Server.endpoints": code_mentions(
            inspect.unwrap(server.Server.run), "endpoints"
        ),
        "Server.handle_reply": hasattr(server.Server, "handle_reply"),
        "Server.create_application() making an asyncio.Queue": code_mentions(create, "Queue"),
        'Server.connections[...]["application_instance"]': code_mentions(create, "application_instance"),
        "WebRequest._response_started": code_mentions(
            getattr(http_protocol.WebRequest, "handle_reply", None), "_response_started"
        ),
        "WebRequest.finished": hasattr(http_protocol.WebRequest, "finished"),
        "HTTPChannel.persistent": hasattr(http.HTTPChannel, "persistent"),
        "FileDescriptor.dataBuffer": hasattr(abstract.FileDescriptor, "dataBuffer"),
        "tcp.Connection.writeSomeData": hasattr(tcp.Connection, "writeSomeData"),
        "FileDescriptor.offset": hasattr(abstract.FileDescriptor, "offset"),
        "FileDescriptor._tempDataLen": code_mentions(abstract.FileDescriptor.__init__, "_tempDataLen"),
        "FileDescriptor._tempDataBuffer": code_mentions(abstract.FileDescriptor.__init__, "_tempDataBuffer"),
        "FileDescriptor.doWrite() sending _tempDataBuffer": code_mentions(
            abstract.FileDescriptor.doWrite, "_tempDataBuffer"
        ),
        "FileDescriptor.disconnecting": hasattr(abstract.FileDescriptor, "disconnecting"),
        "tcp.Connection.connectionLost": hasattr(tcp.Connection, "connectionLost"),
    }
    return [name for name, present in expected.items() if not present]


def untested_version() -> str | None:
    """Return the installed Daphne version if this adapter was not tested with it."""
    import daphne

    return None if daphne.__version__.startswith(TESTED_DAPHNE) else daphne.__version__


def install() -> None:
    """Take over Daphne's shutdown and reply path (daphne.server must be imported)."""
    from daphne.server import Server

    stock_kill_all_applications = getattr(Server, "kill_all_applications", None)
    stock_handle_reply = getattr(Server, "handle_reply", None)
    if stock_kill_all_applications is None or getattr(stock_kill_all_applications, "drains", False):
        return  # Nothing to take over (check W201 says so), or done already.

    @functools.wraps(stock_kill_all_applications)
    def kill_all_applications(server: "Server") -> "Deferred":
        missing = problems()
        if missing:
            logger.error(
                "Cannot drain streams: Daphne lacks %s; stopping the Daphne way, open streams are cut",
                ", ".join(missing),
            )
            return stock_kill_all_applications(server)
        from daphne.server import twisted_loop
        from twisted.internet import defer

        stopping = _stop_or_fall_back(server, stock_kill_all_applications)
        return defer.Deferred.fromFuture(asyncio.ensure_future(stopping, loop=twisted_loop))

    async def handle_reply(
        server: "Server", protocol: "WebRequest | WebSocketProtocol", message: dict
    ) -> None:
        if message["type"] == "http.response.start" and server in _draining:
            message = _close_after_this_response(protocol, message)
        elif _too_far_behind(protocol, message):
            logger.debug("Closing a stream whose client stopped reading client=%s", protocol.client_addr)
            protocol.channel.transport.abortConnection()
            return
        await stock_handle_reply(server, protocol, message)
        if message["type"] == "http.response.start":
            _mark_event_stream(protocol)

    stock_run = Server.run

    @functools.wraps(stock_run)
    def run(server: "Server") -> None:
        backlog = setting("LISTEN_BACKLOG")
        server.endpoints = [with_backlog(endpoint, backlog) for endpoint in server.endpoints]
        return stock_run(server)

    kill_all_applications.drains = True
    Server.kill_all_applications = kill_all_applications
    _skip_deprecation_proxy()
    if not problems():
        Server.run = run
        Server.handle_reply = functools.wraps(stock_handle_reply)(handle_reply)
        Server.create_application = functools.wraps(Server.create_application)(create_application)


def _skip_deprecation_proxy() -> None:
    """Make Daphne reach twisted.web.http directly rather than through Twisted's deprecation proxy."""
    from daphne import http_protocol

    module = module_behind_proxy(getattr(http_protocol, "http", None))
    if module is not None and module.__name__ == "twisted.web.http":
        http_protocol.http = module


def module_behind_proxy(module: object) -> types.ModuleType | None:
    """Return the module that Twisted's deprecation proxy ``module`` stands for, or None."""
    try:
        from twisted.python.deprecate import _ModuleProxy
    except ImportError:
        return None
    if type(module) is not _ModuleProxy:
        return None
    try:
        behind = object.__getattribute__(module, "_module")
    except AttributeError:
        return None
    return behind if isinstance(behind, types.ModuleType) else None


def with_backlog(endpoint: str, backlog: int | None) -> str:
    """Return Twisted endpoint description ``endpoint`` with ``backlog``, unless it names one."""
    kind = endpoint.split(":", 1)[0]
    if backlog is None or kind not in ("tcp", "tcp6", "unix") or "backlog=" in endpoint:
        return endpoint
    return f"{endpoint}:backlog={backlog}"


def create_application(
    server: "Server", protocol: "WebRequest | WebSocketProtocol", scope: dict
) -> "ReceiveQueue | None":
    """Daphne's Server.create_application(), with a lighter queue."""
    assert "application_instance" not in server.connections[protocol]
    queue = ReceiveQueue()
    scope.setdefault("asgi", {"version": "3.0"})
    application_instance = server.application(
        scope=scope,
        receive=queue.get,
        send=functools.partial(server.handle_reply, protocol),
    )
    if protocol not in server.connections:
        return None
    server.connections[protocol]["application_instance"] = asyncio.ensure_future(
        application_instance, loop=asyncio.get_event_loop()
    )
    return queue


class ReceiveQueue:
    """
    An application's incoming ASGI messages: what Daphne uses of
    asyncio.Queue (put_nowait() and get()), without the four deques an
    asyncio.Queue keeps even when empty (about 3 KB per open connection).

    hand_next_to() lets the application's disconnect watcher
    (notifications.asgi.DisconnectWatcher) take the next message without a
    task of its own waiting in get().
    """

    __slots__ = ("_messages", "_waiters", "_taker")

    def __init__(self):
        self._messages: list = []
        self._waiters: list[asyncio.Future] = []
        self._taker = None

    def put_nowait(self, message: dict) -> None:
        if self._taker is not None:
            taker, self._taker = self._taker, None
            taker(message)
            return
        self._messages.append(message)
        self._wake_one()

    def hand_next_to(self, taker: Callable[[dict], None]) -> None:
        """Call ``taker(message)`` with the next message, instead of queueing it for get()."""
        if self._messages:
            taker(self._messages.pop(0))
        else:
            self._taker = taker

    async def get(self) -> dict:
        while not self._messages:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                else:
                    self._wake_one()  # It was woken for a message it will not take.
                raise
        return self._messages.pop(0)

    def _wake_one(self) -> None:
        while self._waiters and self._messages:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    def qsize(self) -> int:
        return len(self._messages)

    def empty(self) -> bool:
        return not self._messages


async def _stop_or_fall_back(server, stock_kill_all_applications) -> None:
    try:
        await asyncio.wait_for(_stop(server), stop_budget())
    except Exception as error:  # Whatever went wrong, the process must still stop.
        logger.error("The drain failed (%r); stopping the Daphne way, open streams are cut", error)
        await stock_kill_all_applications(server).asFuture(asyncio.get_running_loop())


async def _stop(server) -> None:
    started = time.monotonic()
    timeout = setting("DRAIN_TIMEOUT")
    _draining.add(server)
    _skip_discarded_access_lines(server)
    access_lines = _batch_access_lines(server)
    closing = _stop_keep_alive(server)
    streams, remaining = await lifecycle.drain_streams(timeout)
    still_running = await _wait_for_applications(server, started + timeout)
    if remaining or still_running:
        logger.warning(
            "Stopping requests=%d that did not end within NOTIFICATIONS['DRAIN_TIMEOUT']=%ss; "
            "event streams get a farewell, other responses are aborted",
            len(still_running),
            timeout,
        )
        _end_responses(server, still_running, setting("RETRY_MS"))
        for application_instance in still_running:
            application_instance.cancel()
        await asyncio.gather(*still_running, return_exceptions=True)
    await _wait_closed(closing, FLUSH_TIMEOUT)
    if access_lines is not None:
        access_lines.flush()
    lifecycle.stopped(streams, started, forced=len(still_running))


async def _wait_for_applications(server, deadline: float) -> set:
    """
    Wait until every application has finished (Django then sends
    request_finished), also those of requests that arrive during the drain:
    the port stays open, and they are served like any other. Return those
    still running at ``deadline``.
    """
    while True:
        running = {
            details["application_instance"]
            for details in server.connections.values()
            if "application_instance" in details and not details["application_instance"].done()
        }
        if not running:
            return running
        # One at a time: most are done by the time their turn comes, where
        # asyncio.wait() would check and call back each of thousands.
        for application_instance in running:
            left = deadline - time.monotonic()
            if left <= 0:
                return {instance for instance in running if not instance.done()}
            if not application_instance.done():
                await asyncio.wait((application_instance,), timeout=left)
        # Requests that arrived meanwhile are found by the next look.


def _skip_discarded_access_lines(server) -> None:
    # At verbosity 0 or 1 Daphne sends Twisted's log nowhere, yet Twisted
    # formats an access line for every finished request: a tenth of the
    # drain's CPU when thousands of streams end at once.
    if getattr(server, "verbosity", 2) <= 1 and hasattr(server, "http_factory"):
        server.http_factory.log = lambda request: None


# Daphne's access line and the format of its date (daphne/access.py, write_entry()).
ACCESS_LINE = '%s %s %s [%s] "%s" %s %s\n'
ACCESS_DATE = "%d/%b/%Y:%H:%M:%S"
ONE_SECOND = datetime.timedelta(seconds=1)


def _batch_access_lines(server) -> "AccessLines | None":
    """
    Write Daphne's access lines once per turn of the event loop, their date
    formatted once a second, for the rest of this process.
    """
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:
        return None
    action_logger = getattr(server, "action_logger", None)
    if not isinstance(action_logger, AccessLogGenerator) or action_logger.stream is None:
        return None
    lines = AccessLines(action_logger.stream)
    action_logger.stream = lines
    if _writes_access_lines_like_daphne(getattr(AccessLogGenerator, "write_entry", None)):
        action_logger.write_entry = lines.write_entry
    return lines


# Sample entries for _writes_access_lines_like_daphne(): every field, and none of the optional ones.
SAMPLE_ENTRIES = (
    ("127.0.0.1:5000", datetime.datetime(2001, 2, 3, 4, 5, 6, 7), "GET /sse/", 200, 1234, "id", "user"),
    ("127.0.0.1:5000", datetime.datetime(2001, 2, 3, 4, 5, 6, 7), "GET /sse/", None, None, None, None),
)


def _writes_access_lines_like_daphne(stock_write_entry: Callable | None) -> bool:
    """Return whether Daphne's ``write_entry()`` writes the lines access_line() makes."""
    for host, date, *details in SAMPLE_ENTRIES:
        stream = io.StringIO()
        try:
            stock_write_entry(types.SimpleNamespace(stream=stream), host, date, *details)
        except Exception:  # Not the write_entry() this was written for.
            return False
        if stream.getvalue() != access_line(host, date.strftime(ACCESS_DATE), *details):
            return False
    return True


def access_line(
    host: str,
    formatted_date: str,
    request: str,
    status: int | None,
    length: int | None,
    ident: str | None,
    user: str | None,
) -> str:
    """Return Daphne's access line for these details."""
    return ACCESS_LINE % (
        host,
        ident or "-",
        user or "-",
        formatted_date,
        request,
        status or "-",
        length or "-",
    )


class AccessLines:
    """
    A text stream that writes what it is given at the end of the current
    turn of the event loop, in one write() to ``stream``; and Daphne's
    AccessLogGenerator.write_entry(), which formats the date once a second.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream
        self._lines: list[str] = []
        # The second whose formatted date is kept: [starts, ends).
        self._second_starts: datetime.datetime | None = None
        self._second_ends: datetime.datetime | None = None
        self._formatted_second = ""

    def write_entry(
        self,
        host: str,
        date: datetime.datetime,
        request: str,
        status: int | None = None,
        length: int | None = None,
        ident: str | None = None,
        user: str | None = None,
    ) -> None:
        """Write Daphne's access line for these details, the date formatted once a second."""
        # Two comparisons: date.replace(microsecond=0) parses keywords, a
        # microsecond per line.
        if self._second_starts is None or not self._second_starts <= date < self._second_ends:
            self._second_starts = date.replace(microsecond=0)
            self._second_ends = self._second_starts + ONE_SECOND
            self._formatted_second = date.strftime(ACCESS_DATE)
        self.write(access_line(host, self._formatted_second, request, status, length, ident, user))

    def write(self, text: str) -> None:
        if not self._lines:
            asyncio.get_running_loop().call_soon(self.flush)
        self._lines.append(text)

    def flush(self) -> None:
        if self._lines:
            text, self._lines = "".join(self._lines), []
            self.stream.write(text)
        if hasattr(self.stream, "flush"):
            self.stream.flush()


def _stop_keep_alive(server) -> set:
    """
    Make every connection close once its response is finished, so the
    response's final bytes are flushed before the reactor cuts connections.
    """
    channels = set()

    def close_after_response(protocol):
        channel = getattr(protocol, "channel", None)
        if channel is not None:
            channel.persistent = False
            channels.add(channel)

    for protocol in list(server.connections):
        close_after_response(protocol)
    original_protocol_connected = server.protocol_connected

    def protocol_connected(protocol):
        original_protocol_connected(protocol)
        close_after_response(protocol)

    server.protocol_connected = protocol_connected
    return channels


def _close_after_this_response(protocol, message: dict) -> dict:
    """
    Return the start of a response sent during a drain, with "Connection:
    close", and make Twisted close the connection after it: a proxy must not
    send the next request to a stopping process. (Twisted decides whether a
    connection persists when a request's headers arrive, so a request that
    arrives during the drain needs this.)
    """
    channel = getattr(protocol, "channel", None)
    if channel is not None:
        channel.persistent = False
    headers = list(message.get("headers", []))
    if not any(name.lower() == b"connection" for name, _ in headers):
        headers.append((b"connection", b"close"))
    return {**message, "headers": headers}


def _end_responses(server, still_running: set, retry_ms: int) -> None:
    """
    End the responses of applications still running after the drain timeout:
    an event stream with the farewell and a proper end, written through
    Daphne itself; anything else (a download, a CSV export, a slow page) by
    aborting the connection without the chunked terminator, so the client
    sees a failure and not a complete-looking but truncated body.
    """
    for protocol, details in list(server.connections.items()):
        if details.get("application_instance") not in still_running or protocol.finished:
            continue
        if protocol._response_started and _is_event_stream(protocol):
            protocol.handle_reply(
                {"type": "http.response.body", "body": farewell(retry_ms), "more_body": False}
            )
        elif protocol.channel is not None and protocol.channel.transport is not None:
            protocol.channel.transport.abortConnection()


async def _wait_closed(channels: set, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    still_open = [channel for channel in channels if _is_open(channel)]
    for channel in still_open:
        channel.transport.loseConnection()
    while True:
        # Each look checks only what the previous one found open.
        still_open = [channel for channel in still_open if _is_open(channel)]
        if not still_open or time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.01)


def _is_open(channel) -> bool:
    return channel.transport is not None and not channel.transport.disconnected


def _too_far_behind(protocol, message: dict) -> bool:
    if message["type"] != "http.response.body" or not message.get("more_body"):
        return False
    transport = getattr(getattr(protocol, "channel", None), "transport", None)
    if transport is None or not _is_event_stream(protocol):
        return False
    # Twisted's FileDescriptor keeps unsent bytes in dataBuffer (from offset)
    # and in _tempDataBuffer (_tempDataLen bytes).
    unsent = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    return backpressure.too_far_behind(unsent)


class _EventStreamRequest:
    """
    Mixed into the class of a WebRequest whose response is an event stream
    (_mark_event_stream()): asked for every chunk, so decided once, and a
    marker costs no memory where an attribute would grow the request's dict.
    """


class _EagerWrites:
    """
    Mixed into the class of an event stream's TCP connection: send at once
    when nothing is waiting unsent, and buffer only what the socket does not
    take.

    While draining, a stream's farewell is followed at once by the response's
    end and the close: what is written waits for the next turn of the event
    loop, then goes out in one send and the connection closes, as Twisted's
    reactor would do once the socket is writable. Registering each socket
    for writability and back, and dispatching thousands of "writable" events,
    cost more than the sends themselves.
    """

    def writeSequence(self, iovec: Sequence[bytes]) -> None:
        if _draining and self.connected and not self.TLS and not self._writeDisconnected:
            if iovec:
                self._tempDataBuffer.extend(iovec)
                self._tempDataLen += sum(map(len, iovec))
                self._send_soon()
            return
        idle = self._tempDataLen == 0 and len(self.dataBuffer) == self.offset
        eager = idle and not self.disconnecting
        if eager and self.connected and not self.TLS:
            data = b"".join(iovec)
            sent = self.writeSomeData(data)
            if not isinstance(sent, int):
                sent = 0  # The connection is lost: Twisted's own write finds out.
            if sent == len(data):
                return
            iovec = [data[sent:]]
        super().writeSequence(iovec)

    def write(self, data: bytes) -> None:
        self.writeSequence([data])

    def loseConnection(self, *args) -> None:
        if _draining and self.connected and not self.disconnecting and not self.TLS:
            self.stopReading()
            self.disconnecting = True
            self._send_soon()
            return
        super().loseConnection(*args)

    def _send_soon(self) -> None:
        if not getattr(self, "_sending_soon", False):
            self._sending_soon = True
            asyncio.get_running_loop().call_soon(self._send_now)

    def _send_now(self) -> None:
        self._sending_soon = False
        if not self.connected:
            return
        if self.disconnecting:
            _cork_until_close(getattr(self, "socket", None))
        try:
            why = self.doWrite()
        except Exception as error:
            why = error
        if isinstance(why, Exception):
            # Sent in full after loseConnection() (CONNECTION_DONE), or failed.
            self.connectionLost(_failure(why))
        elif self._tempDataLen or len(self.dataBuffer) > self.offset:
            self.startWriting()  # The socket took part of it: Twisted sends the rest.


# Linux's; other systems have no option that ends at the close.
_TCP_CORK = getattr(socket, "TCP_CORK", None)


def _cork_until_close(sock: socket.socket | None) -> None:
    """
    Hold back what ``sock`` sends from now on until its close: the kernel
    puts the FIN on the last segment, so a closing connection's final bytes
    and its end reach the client in one segment, not two (on loopback, the
    receiving side's work for a segment is done in the sender's system call).
    Full segments are not held back, and the close sends the rest.
    """
    if _TCP_CORK is None or sock is None:
        return
    try:
        # Asking for sock.family instead costs an enum lookup per stream.
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, 1)
    except OSError:
        pass  # Not a TCP socket (Daphne listening on a Unix socket): nothing to cork.


def _failure(why: Exception):
    """Return a Failure for ``why``; the one for a clean close is made once, as Twisted's reactor does."""
    done, done_failure = _connection_done()
    if type(why) is done:
        return done_failure
    from twisted.python.failure import Failure

    return Failure(why)


@functools.cache
def _connection_done():
    # A Failure computes its exception's class names when first checked
    # (tcp.Connection.connectionLost() does): once, not per connection.
    # Imported here, once: this module is imported where Twisted is not.
    from twisted.internet import error
    from twisted.python.failure import Failure

    return error.ConnectionDone, Failure(error.ConnectionDone())


@functools.cache
def _with(mixin: type, cls: type) -> type:
    return type(cls.__name__, (mixin, cls), {"__module__": cls.__module__})


def _mark_event_stream(protocol) -> None:
    """Remember that ``protocol`` serves an event stream, and make its writes eager if configured."""
    content_type = protocol.responseHeaders.getRawHeaders(b"content-type") or [b""]
    if not content_type[0].startswith(b"text/event-stream"):
        return
    protocol.__class__ = _with(_EventStreamRequest, type(protocol))
    if setting("EAGER_WRITES"):
        from twisted.internet import tcp

        transport = getattr(protocol.channel, "transport", None)
        if isinstance(transport, tcp.Connection) and not getattr(transport, "TLS", False):
            # TLS writes go through its own protocol; they are left to Twisted.
            transport.__class__ = _with(_EagerWrites, type(transport))


def _is_event_stream(protocol) -> bool:
    return isinstance(protocol, _EventStreamRequest)


def stop_budget() -> float:
    """Return the seconds a stop may take before it falls back to Daphne's own."""
    return setting("DRAIN_TIMEOUT") + 2 * FLUSH_TIMEOUT


def stop_reactor_from(thread: "Thread", timeout: float) -> None:
    """
    Stop the reactor that runs in ``thread`` (Daphne's runserver under the
    autoreloader) and wait up to ``timeout`` seconds: its "before shutdown"
    trigger drains.
    """
    if "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import reactor

    if reactor.running:
        reactor.callFromThread(reactor.stop)
        thread.join(timeout)
