"""
The Daphne adapter checks the internals it relies on at startup, and when
one is missing or the drain fails, the stop falls back to Daphne's own with
one ERROR line: a prompt exit, never a hang.
"""

import asyncio
import datetime
import inspect
import io
import logging
import os
import re
import signal
import subprocess
import sys
import types

import daphne
import daphne.server
import pytest
from daphne.access import AccessLogGenerator
from daphne.server import Server
from django.core.checks import Warning

from notifications import lifecycle
from notifications.asgi import DisconnectWatcher
from notifications.checks import check_servers
from notifications.servers import daphne as adapter
from notifications.testing import daphne as daphne_process
from notifications.testing import free_port, open_streams

from .conftest import ROOT
from .lifecycle import problem_lines
from .support import DEMO_ASGI


def test_check_is_silent_when_every_internal_is_there():
    assert check_servers() == []


def test_check_names_a_missing_internal(monkeypatch):
    monkeypatch.delattr(daphne.server, "twisted_loop")

    [warning] = check_servers()

    assert isinstance(warning, Warning)
    assert warning.id == "notifications.W201"
    assert "daphne.server.twisted_loop" in warning.msg
    assert "a stop cuts every open stream" in warning.msg


def test_check_names_an_instance_attribute_daphne_no_longer_sets(monkeypatch):
    # _response_started is set in WebRequest's code, not on the class.
    def handle_reply(self, message):
        return message

    monkeypatch.setattr(daphne.http_protocol.WebRequest, "handle_reply", handle_reply)

    assert adapter.problems() == ["WebRequest._response_started"]


def test_check_warns_about_an_untested_daphne_version(monkeypatch):
    monkeypatch.setattr(daphne, "__version__", "5.0.0")

    [warning] = check_servers()

    assert warning.id == "notifications.W201"
    assert warning.msg == "Daphne 5.0.0 is not a version the clean stop was tested with."


async def test_a_failing_drain_falls_back_to_daphnes_stop_with_one_error(monkeypatch, caplog):
    async def failing_drain(timeout):
        raise RuntimeError("drain broke")

    monkeypatch.setattr(lifecycle, "drain_streams", failing_drain)
    server = Server(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    running = asyncio.ensure_future(asyncio.sleep(60))
    server.connections = {object(): {"application_instance": running}}  # Server.run() sets it.
    stock_kill_all_applications = Server.kill_all_applications.__wrapped__
    with caplog.at_level(logging.INFO, logger="notifications"):
        await adapter._stop_or_fall_back(server, stock_kill_all_applications)

    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert [record.getMessage() for record in errors] == [
        "The drain failed (RuntimeError('drain broke')); stopping the Daphne way, open streams are cut"
    ]
    assert running.cancelled(), "Daphne's own stop cancelled the application"


def test_manage_py_check_reports_the_missing_internal(tmp_path, server_env):
    env = {**os.environ, **server_env, "DJANGO_SETTINGS_MODULE": "tests.broken_daphne_settings"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert (
        "(notifications.W201) Daphne lacks internals the clean stop relies on: daphne.server.twisted_loop"
        in result.stderr
    )


async def test_daphne_with_a_missing_internal_still_stops_promptly_with_one_error(tmp_path, server_env):
    env = {**server_env, "DJANGO_SETTINGS_MODULE": "tests.broken_daphne_settings"}
    port = free_port()
    server = daphne_process(port, DEMO_ASGI, env=env, cwd=ROOT).start(tmp_path / "daphne.log")
    try:
        clients = await open_streams(port, "/sse/subscribe/announcement/", 20)
        server.signal(signal.SIGTERM)
        ended = await asyncio.gather(*(client.read_to_end(10) for client in clients))
        returncode = await asyncio.to_thread(server.wait, 15)
        output = server.output()

        assert returncode == 0, output
        assert not any(ended), "Daphne's own stop cuts streams"
        assert all(client.cut for client in clients)
        assert problem_lines(output) == [
            "ERROR notifications.servers.daphne: Cannot drain streams: Daphne lacks "
            "daphne.server.twisted_loop; stopping the Daphne way, open streams are cut"
        ]
    finally:
        server.stop()


def test_a_daphne_without_kill_all_applications_is_left_alone(monkeypatch):
    monkeypatch.delattr(Server, "kill_all_applications")
    stock_handle_reply = Server.handle_reply

    adapter.install()

    assert not hasattr(Server, "kill_all_applications")
    assert Server.handle_reply is stock_handle_reply
    assert "Server.kill_all_applications" in check_servers()[0].msg


def test_daphne_calls_twisted_web_http_directly_while_others_keep_the_deprecation_proxy(monkeypatch):
    from daphne import http_protocol
    from twisted.python.deprecate import _ModuleProxy

    imported = sys.modules["twisted.web.http"]
    # What Twisted puts in sys.modules since it deprecated HTTPClient, made
    # here so the test does not depend on which names Twisted deprecates.
    proxy = _ModuleProxy(adapter.module_behind_proxy(imported) or imported)
    for name in ("kill_all_applications", "handle_reply", "create_application", "run"):
        monkeypatch.setattr(Server, name, inspect.unwrap(getattr(Server, name)))
    monkeypatch.setattr(http_protocol, "http", proxy)  # As Daphne imports it.

    adapter.install()

    assert type(http_protocol.http) is types.ModuleType
    assert http_protocol.http.__name__ == "twisted.web.http"
    assert http_protocol.http.Request is proxy.Request
    assert sys.modules["twisted.web.http"] is imported


def test_only_twisteds_deprecation_proxy_is_looked_behind():
    assert adapter.module_behind_proxy(types.ModuleType("twisted.web.http")) is None
    assert adapter.module_behind_proxy(None) is None


async def test_receive_queue_hands_messages_out_in_order_to_waiting_and_later_getters():
    queue = adapter.ReceiveQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)  # Both wait now.

    queue.put_nowait({"type": "http.request"})
    queue.put_nowait({"type": "http.disconnect"})
    queue.put_nowait({"type": "late"})

    assert await first == {"type": "http.request"}
    assert await second == {"type": "http.disconnect"}
    assert queue.qsize() == 1
    assert await queue.get() == {"type": "late"}
    assert queue.empty()


async def test_receive_queue_passes_a_message_on_when_its_getter_is_cancelled_after_waking():
    queue = adapter.ReceiveQueue()
    cancelled = asyncio.ensure_future(queue.get())
    other = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)

    queue.put_nowait({"type": "http.disconnect"})  # Wakes `cancelled`...
    cancelled.cancel()  # ...which never takes it.

    assert await other == {"type": "http.disconnect"}
    assert cancelled.cancelled()


def test_receive_queue_hands_the_next_message_to_its_taker_once():
    queue = adapter.ReceiveQueue()
    taken = []
    queue.hand_next_to(taken.append)

    queue.put_nowait({"type": "http.disconnect"})
    queue.put_nowait({"type": "late"})

    assert taken == [{"type": "http.disconnect"}]
    assert queue.qsize() == 1, "the message after it is queued as usual"
    queue.hand_next_to(taken.append)  # A message already queued goes at once.
    assert taken == [{"type": "http.disconnect"}, {"type": "late"}]
    assert queue.empty()


async def request_watched_through(queue):
    """Start a request task that waits under a DisconnectWatcher; return it and its watcher."""
    watching = asyncio.get_running_loop().create_future()

    async def request():
        watcher = DisconnectWatcher(queue.get)
        watching.set_result(watcher)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return watcher.cancelled_the_request()
        finally:
            watcher.stop()

    task = asyncio.ensure_future(request())
    return task, await watching


async def test_a_disconnect_put_while_the_request_runs_cancels_it_without_a_watcher_task():
    queue = adapter.ReceiveQueue()
    task, watcher = await request_watched_through(queue)
    assert watcher._task is None, "the queue hands the message over; no task waits in get()"

    queue.put_nowait({"type": "http.disconnect"})  # The client left.

    assert await asyncio.wait_for(task, 2) is True, "cancelled, and told it was the disconnect"


async def test_the_disconnect_daphne_puts_as_a_response_ends_does_not_cancel_the_request():
    queue = adapter.ReceiveQueue()
    task, watcher = await request_watched_through(queue)

    # Daphne puts http.disconnect while the request sends its last message;
    # the request stops watching before its next await.
    queue.put_nowait({"type": "http.disconnect"})
    watcher.stop()
    await asyncio.sleep(0)  # The turn in which the watcher looks.

    assert not task.done()
    task.cancel()
    assert await asyncio.gather(task, return_exceptions=True) == [False]


async def test_the_disconnect_a_request_puts_with_its_last_send_is_not_looked_at_later():
    queue = adapter.ReceiveQueue()
    looked = asyncio.Event()
    turns_after = asyncio.Event()

    async def request():
        watcher = DisconnectWatcher(queue.get)
        # Daphne's finish() puts http.disconnect from inside the request's
        # last send. A request still watching after that is not cancelled:
        # nothing was left to look at the message later.
        queue.put_nowait({"type": "http.disconnect"})
        # The loop runs callbacks in order: this one runs after any the put left.
        asyncio.get_running_loop().call_soon(looked.set)
        try:
            await turns_after.wait()
        finally:
            watcher.stop()
        return "ended"

    task = asyncio.ensure_future(request())
    await asyncio.wait_for(looked.wait(), 2)
    turns_after.set()
    assert await asyncio.wait_for(task, 2) == "ended"


def test_receive_queue_is_truthy_like_asyncio_queue():
    # Daphne tests `if self.application_queue:` before using it.
    assert adapter.ReceiveQueue()


def test_create_application_is_checked_against_daphnes_own_once_replaced(monkeypatch):
    monkeypatch.setattr(Server, "kill_all_applications", Server.kill_all_applications)
    monkeypatch.setattr(Server, "handle_reply", Server.handle_reply)
    monkeypatch.setattr(Server, "create_application", Server.create_application)
    adapter.install()

    assert Server.create_application.__name__ == "create_application"
    assert Server.create_application is not daphne.server.Server.create_application.__wrapped__
    assert adapter.problems() == []


async def test_the_drain_runs_without_garbage_collection_and_restores_it_after(monkeypatch):
    import gc

    seen = []

    async def drain(timeout):
        seen.append(gc.isenabled())
        return 0

    monkeypatch.setattr(lifecycle, "drain", drain)
    assert gc.isenabled()
    try:
        streams, remaining = await lifecycle.drain_streams(1)
        assert seen == [False]
    finally:
        lifecycle.stopped(streams=0, started=0.0, forced=0)
    assert gc.isenabled()
    gc.unfreeze()


@pytest.mark.parametrize(
    "endpoint, expected",
    [
        ("tcp:port=8000:interface=127.0.0.1", "tcp:port=8000:interface=127.0.0.1:backlog=512"),
        ("unix:/run/daphne.sock", "unix:/run/daphne.sock:backlog=512"),
        ("tcp:port=8000:backlog=64", "tcp:port=8000:backlog=64"),  # Named by the operator.
        ("ssl:443:privateKey=key.pem", "ssl:443:privateKey=key.pem"),  # Not ours to guess.
        ("fd:fileno=3", "fd:fileno=3"),
    ],
)
def test_endpoints_daphne_builds_get_the_backlog(endpoint, expected):
    assert adapter.with_backlog(endpoint, 512) == expected
    assert adapter.with_backlog(endpoint, None) == endpoint


def _connections_queued_while_stopped(port: int, attempts: int) -> int:
    """Connect ``attempts`` times to a server that accepts nothing; return how many the kernel queued."""
    import selectors
    import socket
    import time

    sockets, queued = [], 0
    with selectors.DefaultSelector() as selector:
        for _ in range(attempts):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            selector.register(sock, selectors.EVENT_WRITE)
            sockets.append(sock)
        # A queued connection completes at once; a dropped SYN is only
        # retried after a second, beyond this wait.
        deadline = time.monotonic() + 0.5
        while queued < attempts and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                selector.unregister(key.fileobj)
                if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    queued += 1
    for sock in sockets:
        sock.close()
    return queued


@pytest.mark.parametrize("backlog, at_most", [("", 51), ("1024", 300)])
def test_a_reconnect_storm_is_queued_not_dropped(tmp_path, server_env, backlog, at_most):
    # Twisted's default backlog is 50 (the kernel queues one more): with it,
    # most of 300 clients reconnecting at once are dropped and retry later.
    env = {**server_env, "NOTIFICATIONS_LISTEN_BACKLOG": backlog}
    port = free_port()
    server = daphne_process(port, DEMO_ASGI, env=env, cwd=ROOT).start(tmp_path / "daphne.log")
    try:
        server.signal(signal.SIGSTOP)  # Accepts nothing: only the kernel's queue holds them.
        try:
            queued = _connections_queued_while_stopped(port, 300)
            # The kernel queues the backlog (plus one on Linux), no more.
            assert queued == 300 if at_most == 300 else 0 < queued <= at_most
        finally:
            server.signal(signal.SIGCONT)
    finally:
        server.stop()


class CountingStream(io.StringIO):
    """A text stream that counts its write() calls (each one a system call for Daphne's access log)."""

    writes = 0

    def write(self, text):
        self.writes += 1
        return super().write(text)


async def test_access_lines_of_one_loop_turn_are_written_together_and_in_order():
    stream = CountingStream()
    lines = adapter.AccessLines(stream)
    for n in range(3):
        lines.write(f"line {n}\n")
    assert stream.writes == 0
    await asyncio.sleep(0)  # The end of this turn of the loop.
    assert (stream.writes, stream.getvalue()) == (1, "line 0\nline 1\nline 2\n")
    lines.write("line 3\n")
    lines.flush()  # At the end of the drain, whatever is left goes at once.
    assert (stream.writes, stream.getvalue()) == (2, "line 0\nline 1\nline 2\nline 3\n")


@pytest.mark.parametrize(
    "details",
    [
        {"status": 200, "length": 1234},
        {"status": None, "length": None},
        {"status": 404, "length": 0, "ident": "id", "user": "alice"},
    ],
)
async def test_a_drains_access_line_is_daphnes_own(details):
    stock = io.StringIO()
    drained = io.StringIO()
    lines = adapter.AccessLines(drained)
    for date in (
        datetime.datetime(2026, 12, 1, 23, 59, 59, 1),
        datetime.datetime(2026, 12, 1, 23, 59, 59, 999999),  # The same second: its formatted date is reused.
        datetime.datetime(2026, 12, 2, 0, 0, 0, 5),  # The next one.
        datetime.datetime(2026, 12, 1, 23, 59, 59, 500),  # The clock went back.
    ):
        AccessLogGenerator(stock).write_entry("127.0.0.1:5000", date, "GET /sse/", **details)
        lines.write_entry("127.0.0.1:5000", date, "GET /sse/", **details)
    lines.flush()

    assert drained.getvalue() == stock.getvalue()
    assert "[02/Dec/2026:00:00:00]" in drained.getvalue().splitlines()[2]


def test_a_drain_formats_daphnes_access_lines_itself():
    # Python 3.12 compiles Daphne's format string into pieces: a check that
    # read its code for that string left every line to Daphne's strftime().
    server = types.SimpleNamespace(action_logger=AccessLogGenerator(io.StringIO()))

    lines = adapter._batch_access_lines(server)

    assert server.action_logger.write_entry == lines.write_entry


def test_a_drain_leaves_the_access_line_to_daphne_when_its_format_changed(monkeypatch):
    def write_entry(self, host, date, request, status=None, length=None, ident=None, user=None):
        self.stream.write(f"{date.isoformat()} {host} {request}\n")

    monkeypatch.setattr(AccessLogGenerator, "write_entry", write_entry)
    server = types.SimpleNamespace(action_logger=AccessLogGenerator(io.StringIO()))

    lines = adapter._batch_access_lines(server)

    assert server.action_logger.stream is lines
    assert "write_entry" not in vars(server.action_logger)


async def test_a_drain_writes_every_access_line_to_daphnes_access_log(tmp_path, server_env):
    access_log = tmp_path / "access.log"
    server = daphne_process(
        free_port(), DEMO_ASGI, env=server_env, cwd=ROOT, options=("--access-log", str(access_log))
    ).start(tmp_path / "daphne.log")
    try:
        clients = await open_streams(server.port, "/sse/subscribe/announcement/", 50)
        server.signal(signal.SIGTERM)
        assert all(await asyncio.gather(*(client.read_to_end(10) for client in clients)))
        assert await asyncio.to_thread(server.wait, 15) == 0
    finally:
        server.stop()
    lines = access_log.read_text().splitlines()
    streams = [line for line in lines if '"GET /sse/subscribe/announcement/" 200 ' in line]
    assert len(streams) == 50, lines
    # Daphne's own format, with the date the drain formats once a second.
    line_format = re.compile(r'127\.0\.0\.1:\d+ - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\] "GET [^"]+" 200 \d+')
    assert [line for line in streams if not line_format.fullmatch(line)] == []
    assert problem_lines(server.output()) == []
