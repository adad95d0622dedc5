"""
How the process drains on shutdown.

A stop must never cut a stream: every event published before the signal is
delivered, then a ``server_shutdown`` event with ``retry:`` so EventSource
reconnects by itself, then a properly ended response, then a prompt exit.

Daphne has no lifespan support, so the drain hooks into the servers:

- Daphne (the ``daphne`` command, and ``runserver --noreload``) calls
  ``Server.kill_all_applications`` from a Twisted "before shutdown" trigger
  and cancels every application at once. Twisted runs all "before" triggers
  back to back, so a trigger of our own could not run first: install()
  replaces that method with one that drains, waits for the applications to
  finish (so Django's request_finished runs), closes the connections after
  their buffers are flushed, and only then cancels what is left.
- ``runserver`` with the autoreloader serves from a daemon thread of a child
  process, and the child leaves with ``sys.exit()`` on a file change or
  SIGTERM: nothing would stop the reactor. install() wraps the reloader so the
  child stops the reactor from its thread (running the drain above) before
  exiting, and so the parent, on SIGINT or SIGTERM, lets the child drain
  instead of killing it. Across a reload the child hands its in-memory
  history to the next child through a file the parent names, so ids stay
  valid and clients catch up instead of resetting.

Before the drain, the embedded task worker (tasks/worker.py), if any, stops
and gets part of the drain timeout to finish its task.

Stream cleanup itself lives in the stream's ``finally`` (streams.py): a client
disconnect and a forced stop both arrive there as cancellation.
"""

import asyncio
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from django.utils import autoreload

from . import process
from .conf import setting
from .history import get_history
from .hub import existing_hub
from .streams import farewell
from .tasks import worker as task_worker

logger = logging.getLogger(__name__)

# Seconds to let closed connections flush their last bytes to the client.
FLUSH_TIMEOUT = 2
# Names the file through which reloader children hand history over.
HANDOVER_ENV = "NOTIFICATIONS_HISTORY_HANDOVER"


async def drain(timeout: float) -> int:
    """
    Refuse new events, end every stream of this loop with a farewell, and
    return how many streams were still open after ``timeout`` seconds.
    """
    process.stopping = True
    hub = existing_hub(asyncio.get_running_loop())
    if hub is None:
        return 0
    return await hub.drain(timeout)


def install() -> None:
    """Make Daphne and runserver's autoreloader drain streams before exiting."""
    if "daphne.server" in sys.modules:
        from daphne.server import Server

        if Server.kill_all_applications is not drain_then_kill_all_applications:
            Server.kill_all_applications = drain_then_kill_all_applications
    if autoreload.run_with_reloader is not run_with_reloader:
        autoreload.run_with_reloader = run_with_reloader


def drain_then_kill_all_applications(server):
    """Replace daphne.server.Server.kill_all_applications: drain first."""
    from daphne.server import twisted_loop
    from twisted.internet import defer

    return defer.Deferred.fromFuture(asyncio.ensure_future(_stop_server(server), loop=twisted_loop))


async def _stop_server(server) -> None:
    started = time.monotonic()
    timeout = setting("DRAIN_TIMEOUT")
    # First let the embedded task worker finish its task, while events still
    # go out, so its completion reaches browsers before the farewell.
    await asyncio.to_thread(task_worker.stop, timeout / 2)
    hub = existing_hub(asyncio.get_running_loop())
    streams = hub.count if hub else 0
    logger.info("Draining streams=%d timeout=%ss", streams, timeout)
    closing = _stop_keep_alive(server)
    remaining = await drain(max(timeout - (time.monotonic() - started), 0.1))
    # Let every application finish (Django then sends request_finished).
    pending = [
        details["application_instance"]
        for details in server.connections.values()
        if "application_instance" in details and not details["application_instance"].done()
    ]
    if pending:
        left = max(timeout - (time.monotonic() - started), 0.1)
        _, still_running = await asyncio.wait(pending, timeout=left)
    else:
        still_running = set()
    if remaining or still_running:
        logger.warning(
            "Stopping requests=%d that did not end within NOTIFICATIONS['DRAIN_TIMEOUT']=%ss; "
            "their responses are ended now",
            len(still_running),
            timeout,
        )
        _end_responses(server, setting("RETRY_MS"))
        for application_instance in still_running:
            application_instance.cancel()
        await asyncio.gather(*still_running, return_exceptions=True)
    await _wait_closed(closing, FLUSH_TIMEOUT)
    logger.info(
        "Drained streams=%d in %.2fs forced=%d", streams, time.monotonic() - started, len(still_running)
    )
    # The process exits next, and the interpreter's last garbage collection
    # would walk every object the closed connections left behind: about a
    # second per 3,000 streams (benchmarks/run.py). It skips frozen objects.
    gc.freeze()


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


def _end_responses(server, retry_ms: int) -> None:
    # A response still open after the drain timeout: write the farewell and
    # the chunked terminator through Daphne itself, then cancel the app.
    for protocol in list(server.connections):
        if getattr(protocol, "_response_started", False) and not protocol.finished:
            protocol.handle_reply(
                {"type": "http.response.body", "body": farewell(retry_ms), "more_body": False}
            )


async def _wait_closed(channels: set, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for channel in channels:
        if channel.transport is not None and not channel.transport.disconnected:
            channel.transport.loseConnection()
    while time.monotonic() < deadline:
        if all(c.transport is None or c.transport.disconnected for c in channels):
            return
        await asyncio.sleep(0.01)


def run_with_reloader(main_func, *args, **kwargs):
    """
    Replace django.utils.autoreload.run_with_reloader: in the child, drain the
    server before leaving; in the parent, let the child drain on a stop.
    """
    if os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) != "true":
        sys.exit(_restart_with_reloader())
    stop_requested = _exit_on_first_signal()
    _take_history_over()
    reloader = autoreload.get_reloader()
    logger.info("Watching for file changes with %s", reloader.__class__.__name__)
    try:
        autoreload.start_django(reloader, main_func, *args, **kwargs)
    except KeyboardInterrupt:
        pass
    finally:
        stop_requested.set()
        _stop_reactor_thread()
        _hand_history_over()


def _take_history_over() -> None:
    handover = Path(os.environ.get(HANDOVER_ENV, ""))
    history = get_history()
    if handover.is_file() and hasattr(history, "restore"):
        history.restore(json.loads(handover.read_text()))
        handover.unlink()


def _hand_history_over() -> None:
    history = get_history()
    if os.environ.get(HANDOVER_ENV) and hasattr(history, "dump"):
        Path(os.environ[HANDOVER_ENV]).write_text(json.dumps(history.dump()))


def _exit_on_first_signal() -> threading.Event:
    """Leave the reloader loop on the first SIGINT or SIGTERM; ignore repeats."""
    stop_requested = threading.Event()

    def handler(signum, frame):
        if not stop_requested.is_set():
            stop_requested.set()
            sys.exit(0)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop_requested


def _stop_reactor_thread() -> None:
    # The server runs in the daemon thread "django-main-thread"; stopping its
    # reactor fires the "before shutdown" trigger, which drains.
    from twisted.internet import reactor

    server_thread = next((t for t in threading.enumerate() if t.name == "django-main-thread"), None)
    if server_thread is None or not reactor.running:
        return
    reactor.callFromThread(reactor.stop)
    server_thread.join(setting("DRAIN_TIMEOUT") + FLUSH_TIMEOUT + 1)


def _restart_with_reloader() -> int:
    """Run the server in a child process, restarting it after a reload."""
    handover = Path(tempfile.gettempdir()) / f"notifications-history-{os.getpid()}.json"
    environ = {**os.environ, autoreload.DJANGO_AUTORELOAD_ENV: "true", HANDOVER_ENV: str(handover)}
    arguments = autoreload.get_child_arguments()
    try:
        return _run_children(arguments, environ)
    finally:
        handover.unlink(missing_ok=True)


def _run_children(arguments: list[str], environ: dict) -> int:
    child = None
    stopping = False

    def forward(signum, frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    while True:
        child = subprocess.Popen(arguments, env=environ, close_fds=False)
        returncode = _wait_for_child(child, lambda: stopping)
        if stopping:
            return 0
        if returncode != 3:
            return returncode


def _wait_for_child(child: subprocess.Popen, stopping) -> int:
    # Once stopping, the child gets a bounded time to drain, then is killed.
    deadline = None
    while True:
        try:
            return child.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            if stopping():
                deadline = deadline or time.monotonic() + setting("DRAIN_TIMEOUT") + FLUSH_TIMEOUT + 2
                if time.monotonic() > deadline:
                    child.kill()
