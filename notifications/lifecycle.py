"""
How the process drains on shutdown.

A stop must never cut a stream: every event published before the signal is
delivered, then a ``server_shutdown`` event with ``retry:`` so EventSource
reconnects by itself, then a properly ended response, then a prompt exit.

This module is the part that does not depend on a server. The servers have
no lifespan hook to run it from, so an adapter per server calls it from the
server's own stop path (servers/daphne.py for Daphne and Daphne's runserver,
servers/runserver.py for Django's autoreloader); install() installs them.

Before the drain, the embedded task worker (tasks/worker.py), if any, stops
and gets part of the drain timeout to finish its task.

Stream cleanup itself lives in the stream's ``finally`` (streams.py): a client
disconnect and a forced stop both arrive there as cancellation.
"""

import asyncio
import gc
import logging
import sys
import time

from . import process
from .hub import existing_hub
from .tasks import worker as task_worker

logger = logging.getLogger(__name__)


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


async def drain_streams(timeout: float) -> tuple[int, int]:
    """
    Let the embedded task worker finish its task while events still go out
    (so its completion reaches browsers before the farewell), then drain.
    Return how many streams were open and how many were left after
    ``timeout`` seconds in all.
    """
    started = time.monotonic()
    # The process exits after the drain. Ending thousands of requests makes
    # and drops millions of objects, and each full garbage collection would
    # walk all of them (about half of the drain's CPU at 10,000 streams);
    # what the drain leaves in cycles is freed when the process exits.
    gc.freeze()
    gc.disable()
    await asyncio.to_thread(task_worker.stop, timeout / 2)
    hub = existing_hub(asyncio.get_running_loop())
    streams = hub.count if hub else 0
    logger.info("Draining streams=%d timeout=%ss", streams, timeout)
    remaining = await drain(max(timeout - (time.monotonic() - started), 0.1))
    return streams, remaining


def stopped(streams: int, started: float, forced: int) -> None:
    """Log the end of a drain that began at ``started`` and ready the process to exit."""
    logger.info("Drained streams=%d in %.2fs forced=%d", streams, time.monotonic() - started, forced)
    # The process exits next, and the interpreter's last garbage collection
    # would walk every object the closed connections left behind: about a
    # second per 3,000 streams (benchmarks/run.py). It skips frozen objects.
    gc.freeze()
    gc.enable()


def install() -> None:
    """Make the servers this process runs drain streams before they stop."""
    from .servers import runserver

    runserver.install()
    if "daphne.server" in sys.modules:
        from .servers import daphne

        daphne.install()
